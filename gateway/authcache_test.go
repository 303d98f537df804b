package gateway_test

import (
	"testing"
	"time"

	"supportgate/gateway/identity"
)

// TestAuthCacheRevocation checks that resolved bearer tokens, cached for a
// few seconds, still lose their power at once on logout, lock and role
// change, with no time passing on the clock.
func TestAuthCacheRevocation(t *testing.T) {
	e := newEnv(t)
	e.addUser("root", identity.RoleAdmin, "")
	alice := e.addUser("alice", identity.RoleAgent, "")
	bob := e.addUser("bob", identity.RoleAgent, "")
	carol := e.addUser("carol", identity.RoleSupervisor, "")
	for _, u := range []*testUser{alice, bob, carol} {
		e.do(u, "GET", "/api/v1/me", nil, 200, nil) // warm the cache
	}

	e.do(alice, "POST", "/api/v1/logout", nil, 200, nil)
	e.do(alice, "GET", "/api/v1/me", nil, 401, nil)

	e.do(e.users["root"], "POST", "/api/v1/users/bob/lock", nil, 200, nil)
	e.do(bob, "GET", "/api/v1/me", nil, 401, nil)

	// /me reports the role the request was authorised with.
	e.do(e.users["root"], "POST", "/api/v1/users/carol", map[string]any{"role": "auditor"}, 200, nil)
	var me struct {
		Role string `json:"role"`
	}
	e.do(carol, "GET", "/api/v1/me", nil, 200, &me)
	if me.Role != "auditor" {
		t.Errorf("role after change: got %q, want auditor", me.Role)
	}

	// The cache never outlives the token.
	dave := e.addUser("dave", identity.RoleAgent, "")
	e.do(dave, "GET", "/api/v1/me", nil, 200, nil)
	e.clock.Advance(8*time.Hour + time.Second)
	e.do(dave, "GET", "/api/v1/me", nil, 401, nil)
}
