package gateway

import (
	"strconv"
	"testing"
	"time"

	"supportgate/gateway/identity"
)

// TestGhostLocksBounded: past maxGhosts names the locked ones are kept, so
// a flood of new names cannot lift a lock early, and memory stays bounded.
func TestGhostLocksBounded(t *testing.T) {
	l := identity.DefaultLockout
	g := newGhostLocks()
	now := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	for range l.MaxFailures {
		g.fail(l, "victim", now)
	}
	if locked, _ := g.locked(l, "victim", now); !locked {
		t.Fatal("victim not locked after MaxFailures failures")
	}
	for i := range 3 * maxGhosts {
		g.fail(l, "flood"+strconv.Itoa(i), now.Add(time.Second))
		if len(g.names) > maxGhosts {
			t.Fatalf("%d names remembered, more than %d", len(g.names), maxGhosts)
		}
	}
	if locked, _ := g.locked(l, "victim", now.Add(time.Minute)); !locked {
		t.Fatal("a flood of names lifted the lock")
	}
	if locked, _ := g.locked(l, "victim", now.Add(l.LockFor+time.Second)); locked {
		t.Fatal("the lock did not lapse")
	}
}
