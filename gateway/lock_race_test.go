package gateway_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"supportgate/gateway"
	"supportgate/gateway/audit"
	"supportgate/gateway/identity"
	"supportgate/gateway/sqlite"
	"supportgate/session"
)

// gatedStore holds the storing of new sessions until release is closed,
// once armed: a create that was authorized is still on its way to the
// store.
type gatedStore struct {
	*sqlite.Store
	armed   chan struct{} // closed to arm
	reached chan struct{} // closed when a create waits
	release chan struct{}
}

func (s *gatedStore) CreateSessionChained(ctx context.Context, ss *session.Session, chain audit.ChainFunc) error {
	select {
	case <-s.armed:
		close(s.reached)
		<-s.release
	default:
	}
	return s.Store.CreateSessionChained(ctx, ss, chain)
}

// TestLockDuringCreate: an agent locked while their request to create a
// session is between its authorization and the store gets no session out
// of it: the lock ended the agent's sessions before this one was stored,
// and the create ends it once it sees the lock.
func TestLockDuringCreate(t *testing.T) {
	var gs *gatedStore
	e := newEnvWith(t, func(c *gateway.Config) {
		gs = &gatedStore{Store: c.Store.(*sqlite.Store), armed: make(chan struct{}), reached: make(chan struct{}), release: make(chan struct{})}
		c.Store = gs
	})
	alice := e.addUser("alice", identity.RoleAgent, "red")
	root := e.addUser("root", identity.RoleAdmin, "")
	close(gs.armed)

	type result struct {
		code int
		body []byte
	}
	created := make(chan result, 1)
	go func() {
		code, body := e.send(nil, alice, "POST", "/api/v1/sessions",
			map[string]any{"customer": "Bob", "scopes": []string{"view"}, "duration": "30m"})
		created <- result{code, body}
	}()
	select {
	case <-gs.reached:
	case <-time.After(10 * time.Second):
		t.Fatal("the create never reached the store")
	}
	var locked struct {
		SessionsEnded int `json:"sessions_ended"`
	}
	e.do(root, "POST", "/api/v1/users/alice/lock", nil, http.StatusOK, &locked)
	close(gs.release)
	res := <-created
	if res.code != http.StatusForbidden {
		t.Errorf("create during the lock: got %d %s, want 403", res.code, res.body)
	}
	ss, err := e.g.Broker().List(context.Background(), session.Filter{Agent: "alice"})
	if err != nil || len(ss) != 1 {
		t.Fatalf("alice's sessions: %d, %v", len(ss), err)
	}
	if s := ss[0]; s.State != session.Ended || s.EndReason != session.EndLocked || s.EndedBy != "root" {
		t.Fatalf("the session created during the lock: %s/%s by %q, want ended/locked by root", s.State, s.EndReason, s.EndedBy)
	}
}
