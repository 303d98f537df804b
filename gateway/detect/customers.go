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
