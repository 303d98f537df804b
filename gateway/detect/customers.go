package detect

import (
	"fmt"
	"time"

	"supportgate/gateway/audit"
)

// The new_customer_network rule: a customer who has approved sessions
// before, always from the same few networks, approves one from a network
// never seen for them. That is what a forwarded or stolen consent link, or
// a caller impersonating the customer, looks like from the gateway.

// Bounds of the customer history the worker keeps in memory.
const (
	maxCustomerHistory = 20_000 // customers remembered; past it the history starts over
	maxNetsPerCustomer = 16     // networks remembered per customer
	customerLearn      = 2      // approvals before a customer's networks are judged
)

// customerNets is one customer's approval history.
type customerNets struct {
	approvals int
	nets      map[string]time.Time
}

func (d *Detector) onApproved(a *agentState, rec audit.Record) {
	d.selfApproval(a, rec)
	s := a.sessions[rec.Session]
	if s == nil || s.customer == "" || rec.Remote == "" {
		return
	}
	net := network(rec.Remote)
	if net == "" {
		return
	}
	c := d.custNets[s.customer]
	if c == nil {
		if len(d.custNets) >= maxCustomerHistory {
			clear(d.custNets)
		}
		c = &customerNets{nets: map[string]time.Time{}}
		d.custNets[s.customer] = c
	}
	_, known := c.nets[net]
	if !known && c.approvals >= customerLearn {
		what := fmt.Sprintf("%s's session with %s was approved from %s, a network never seen for that customer in %d earlier approvals",
			a.name, s.customer, rec.Remote, c.approvals)
		d.raise(a, rec, KindNewCustomerNet, s.customer, Medium, what, rec.Seq)
	}
	c.approvals++
	see(c.nets, net, rec.Time, maxNetsPerCustomer)
}

// The self_approval rule: the customer's consent came from an address the
// agent was itself using (signing in, creating sessions, running commands)
// in the last selfApprovalWindow. An agent who opens the link they were
// given and approves it has a session nobody consented to. A help desk
// whose agents and customers share one NAT looks the same, so the alert is
// medium and names the address for a person to judge. A loopback address
// names nobody: it is the gateway's own host, or a proxy in front of it
// that every client shares.
const selfApprovalWindow = time.Hour

func (d *Detector) selfApproval(a *agentState, rec audit.Record) {
	ip, ok := parseAddr(rec.Remote)
	if !ok || ip.IsLoopback() || ip.IsUnspecified() {
		return
	}
	for addr, st := range a.active {
		if mine, ok := parseAddr(addr); !ok || mine != ip || rec.Time.Sub(st.t) > selfApprovalWindow {
			continue
		}
		what := fmt.Sprintf("%s's session %s was approved from %s, the address %s was using %s earlier; the agent may have approved it themselves",
			a.name, rec.Session, rec.Remote, a.name, minutes(rec.Time.Sub(st.t)))
		d.raise(a, rec, KindSelfApproval, rec.Session, Medium, what, st.seq, rec.Seq)
		return
	}
}
