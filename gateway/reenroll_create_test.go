package gateway_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"supportgate/gateway"
	"supportgate/gateway/identity"
	"supportgate/gateway/sqlite"
	"supportgate/session"
)

// TestReenrollDuringCreate: a session the agent asked for before an admin
// reset their sign-in, stored after the reset ended the agent's sessions,
// is ended too: the reset says every session the agent runs ends.
func TestReenrollDuringCreate(t *testing.T) {
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
		body := `{"customer":"Bob","scopes":["view"],"duration":"30m"}`
		req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/sessions", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+alice.token)
		resp, err := e.client().Do(req)
		if err != nil {
			created <- result{code: -1, body: []byte(err.Error())}
			return
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		created <- result{resp.StatusCode, data}
	}()
	select {
	case <-gs.reached:
	case <-time.After(10 * time.Second):
		t.Fatal("the create never reached the store")
	}
	e.do(root, "POST", "/api/v1/users/alice/reenroll", "{}", 200, nil)
	close(gs.release)
	res := <-created
	if res.code == http.StatusCreated {
		t.Errorf("create during the reset: got %d %s, want a refusal", res.code, res.body)
	}
	ss, err := e.g.Broker().List(context.Background(), session.Filter{Agent: "alice"})
	if err != nil || len(ss) != 1 {
		t.Fatalf("alice's sessions: %d, %v", len(ss), err)
	}
	if s := ss[0]; s.State != session.Ended || s.EndReason != session.EndRevoked {
		t.Fatalf("the session created during the reset: %s/%s by %q, want ended/revoked", s.State, s.EndReason, s.EndedBy)
	}
}
