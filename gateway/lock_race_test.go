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

// createDuring has alice, an agent, ask for a session and, while her
// request waits between its authorization and the store, has root, an
// admin, act on her account. It returns the create's answer and alice's
// sessions after it, of which there must be exactly one.
func createDuring(t *testing.T, act func(e *env, root *testUser)) (int, []byte, *session.Session) {
	t.Helper()
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
	act(e, root)
	close(gs.release)
	res := <-created
	ss, err := e.g.Broker().List(context.Background(), session.Filter{Agent: "alice"})
	if err != nil || len(ss) != 1 {
		t.Fatalf("alice's sessions: %d, %v", len(ss), err)
	}
	return res.code, res.body, ss[0]
}

// TestLockDuringCreate: an agent locked while their request to create a
// session is between its authorization and the store gets no session out
// of it: the lock ended the agent's sessions before this one was stored,
// and the create ends it once it sees the lock.
func TestLockDuringCreate(t *testing.T) {
	code, body, s := createDuring(t, func(e *env, root *testUser) {
		var locked struct {
			SessionsEnded int `json:"sessions_ended"`
		}
		e.do(root, "POST", "/api/v1/users/alice/lock", nil, http.StatusOK, &locked)
	})
	if code != http.StatusForbidden {
		t.Errorf("create during the lock: got %d %s, want 403", code, body)
	}
	if s.State != session.Ended || s.EndReason != session.EndLocked || s.EndedBy != "root" {
		t.Fatalf("the session created during the lock: %s/%s by %q, want ended/locked by root", s.State, s.EndReason, s.EndedBy)
	}
}
