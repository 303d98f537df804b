package gateway_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"supportgate/gateway"
	"supportgate/gateway/identity"
	"supportgate/session"
)

// TestAgentMovedOrDemoted: moving an agent to another team keeps their
// live shell with the customer (a team does not change an agent's access
// to their own sessions; it cut all their SSH connections). Taking the
// agent role away ends their open sessions, which they could otherwise
// neither use nor end while the customer's access stayed granted.
func TestAgentMovedOrDemoted(t *testing.T) {
	var mu sync.Mutex
	var dropped []string
	e := newEnvWith(t, func(c *gateway.Config) {
		c.OnUserDropped = func(n string) { mu.Lock(); dropped = append(dropped, n); mu.Unlock() }
	})
	adm := e.addUser("ada", identity.RoleAdmin, "")
	alice := e.addUser("alice", identity.RoleAgent, "red")
	e.addUser("sam", identity.RoleSupervisor, "red")
	live := e.newSession(alice, []string{"view", "shell"}, "30m")
	cu := e.customer(live.token())
	cu.open()
	cu.post("approve", map[string]any{"scopes": []string{"view", "shell"}})

	e.do(adm, "POST", "/api/v1/users/alice", map[string]any{"team": "blue"}, 200, nil)
	e.do(adm, "POST", "/api/v1/users/sam", map[string]any{"team": "blue"}, 200, nil)
	mu.Lock()
	got := slices.Clone(dropped)
	mu.Unlock()
	if slices.Contains(got, "alice") || !slices.Contains(got, "sam") {
		t.Errorf("connections dropped after the team moves: %v; want sam's (a supervisor's watches), not alice's", got)
	}
	if st, _ := e.sessionState(alice, live.ID); st != "active" {
		t.Fatalf("alice's session after her move: %s", st)
	}

	e.do(adm, "POST", "/api/v1/users/alice", map[string]any{"role": "auditor"}, 200, nil)
	if s, err := e.g.Broker().Get(context.Background(), live.ID); err != nil || s.State != session.Ended || s.EndReason != session.EndRevoked {
		t.Errorf("alice's session after she became an auditor: %v, %v; want ended/revoked", s, err)
	}
}
