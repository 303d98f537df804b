package detect

import (
	"context"
	"strings"
	"testing"
	"time"

	"supportgate/gateway/audit"
)

// feed is a Detector under test and the audit records fed to it.
type feed struct {
	d   *Detector
	seq uint64
}

func newFeed(t *testing.T) *feed {
	t.Helper()
	d, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return &feed{d: d}
}

// observe feeds e as the next audit record and waits until it is taken.
func (f *feed) observe(e audit.Event) {
	f.seq++
	f.d.ObserveWait(context.Background(), audit.Record{Seq: f.seq, Event: e})
}

// alerts returns the alerts of kind raised so far.
func (f *feed) alerts(kind Kind) []Alert {
	f.d.Flush(context.Background())
	var out []Alert
	for _, a := range f.d.Alerts() {
		if a.Kind == kind {
			out = append(out, a)
		}
	}
	return out
}

func TestNewCustomerNetwork(t *testing.T) {
	f := newFeed(t)
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	approve := func(id, customer, addr string, at time.Time) {
		f.observe(audit.Event{Time: at, Type: "session.created", Actor: "alice", Session: id,
			Detail: map[string]string{"agent": "alice", "customer": customer}})
		f.observe(audit.Event{Time: at.Add(time.Minute), Type: "session.approved", Actor: "customer",
			Role: "customer", Session: id, Remote: addr, Detail: map[string]string{"agent": "alice"}})
	}
	count := func() int { return len(f.alerts(KindNewCustomerNet)) }
	approve("s1", "ACME", "198.51.100.7", t0)
	approve("s2", "ACME", "198.51.100.9", t0.Add(24*time.Hour))
	approve("s3", "Globex", "203.0.113.5", t0.Add(25*time.Hour)) // a new customer: nothing to compare
	if got := count(); got != 0 {
		t.Fatalf("%d alerts while learning, want 0", got)
	}
	approve("s4", "ACME", "198.51.100.200", t0.Add(48*time.Hour)) // same /24
	if got := count(); got != 0 {
		t.Fatalf("%d alerts for a known network, want 0", got)
	}
	approve("s5", "ACME", "203.0.113.66", t0.Add(72*time.Hour))
	if got := count(); got != 1 {
		t.Fatalf("%d alerts for a new network of a known customer, want 1", got)
	}
}

func TestSelfApproval(t *testing.T) {
	f := newFeed(t)
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	observe := f.observe
	session := func(id, agentAddr, customerAddr string, approveAfter time.Duration) {
		observe(audit.Event{Time: t0, Type: "session.created", Actor: "alice", Role: "agent", Session: id, Remote: agentAddr,
			Detail: map[string]string{"agent": "alice", "customer": "ACME"}})
		observe(audit.Event{Time: t0.Add(approveAfter), Type: "session.approved", Actor: "customer", Role: "customer",
			Session: id, Remote: customerAddr, Detail: map[string]string{"agent": "alice"}})
	}
	alerts := func() []Alert { return f.alerts(KindSelfApproval) }
	session("s1", "203.0.113.10", "198.51.100.7", time.Minute)
	if got := alerts(); len(got) != 0 {
		t.Fatalf("a customer on their own network: %d alerts", len(got))
	}
	session("s2", "203.0.113.10", "203.0.113.10:51234", 2*time.Minute)
	got := alerts()
	if len(got) != 1 || got[0].Agent != "alice" || got[0].Severity != Medium || !strings.Contains(got[0].Summary, "203.0.113.10") {
		t.Fatalf("approved from the agent's own address: %+v", got)
	}
	session("s3", "203.0.113.10", "203.0.113.10", 3*time.Hour) // the agent's use of it is long past
	if n := len(alerts()); n != 1 {
		t.Fatalf("approved hours after the agent used the address: %d alerts, want still 1", n)
	}
	session("s4", "127.0.0.1", "127.0.0.1", time.Minute) // a proxy on the gateway's host
	if n := len(alerts()); n != 1 {
		t.Fatalf("approved from loopback, which names nobody: %d alerts, want still 1", n)
	}
}
