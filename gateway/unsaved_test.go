package gateway_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"supportgate/gateway"
	"supportgate/gateway/audit"
	"supportgate/gateway/identity"
	"supportgate/gateway/sqlite"
	"supportgate/session"
)

// brokenWrites is the SQLite store with session updates failing while
// fail is set, as on a full disk.
type brokenWrites struct {
	*sqlite.Store
	fail atomic.Bool
}

var errDiskFull = errors.New("database or disk is full")

func (b *brokenWrites) UpdateSessions(ctx context.Context, cs ...session.Change) error {
	if b.fail.Load() {
		return errDiskFull
	}
	return b.Store.UpdateSessions(ctx, cs...)
}

func (b *brokenWrites) UpdateSessionsChained(ctx context.Context, cs []session.Change, chain audit.ChainFunc) error {
	if b.fail.Load() {
		return errDiskFull
	}
	return b.Store.UpdateSessionsChained(ctx, cs, chain)
}

// TestRevokeNotStored: the customer revokes while the store cannot write.
// The revoke is in force (the agent's view says ended), /healthz says the
// gateway is unhealthy and /metrics counts the end not stored, until the
// store writes again and the broker stores it; the stored session is then
// ended, with its audit event. Before, the revoke answered 500, the
// session stayed active in the store and a restart brought it back.
func TestRevokeNotStored(t *testing.T) {
	var st *brokenWrites
	e := newEnvWith(t, func(c *gateway.Config) {
		st = &brokenWrites{Store: c.Store.(*sqlite.Store)}
		c.Store = st
	})
	alice := e.addUser("alice", identity.RoleAgent, "")
	s := e.newSession(alice, []string{"view"}, "30m")
	cu := e.customer(s.token())
	cu.open()
	if code, v := cu.post("approve", map[string]any{"scopes": []string{"view"}}); code != 200 {
		t.Fatalf("approve: %d %v", code, v)
	}
	st.fail.Store(true)
	if code, v := cu.post("revoke", nil); code != 200 || v["state"] != "ended" {
		t.Fatalf("revoke with the store failing: %d %v, want 200 and ended", code, v)
	}
	if state, reason := e.sessionState(alice, s.ID); state != "ended" || reason != "revoked" {
		t.Fatalf("the agent sees %s/%s, want ended/revoked", state, reason)
	}
	if code, v := cu.open(); code != 200 || v["state"] != "ended" {
		t.Fatalf("the customer's view after their revoke: %d %v, want ended", code, v["state"])
	}
	health := func() (int, string) {
		resp, err := e.client().Get(e.srv.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := health(); code != 503 || !strings.Contains(body, "1 ended sessions could not be stored") {
		t.Errorf("/healthz with an end not stored: %d %s", code, body)
	}
	if _, m := e.send(nil, nil, "GET", "/metrics", nil); !strings.Contains(string(m), "supportgate_session_ends_unsaved 1") {
		t.Errorf("/metrics lacks the unsaved end")
	}

	st.fail.Store(false)
	e.clock.Advance(2 * time.Second)
	if code, body := health(); code != 200 {
		t.Errorf("/healthz after the store recovered: %d %s", code, body)
	}
	stored, err := st.GetSession(context.Background(), s.ID)
	if err != nil || stored.State != session.Ended || stored.EndReason != session.EndRevoked {
		t.Fatalf("stored after the retry: %v, %v; want ended/revoked", stored, err)
	}
	ended := 0
	st.ScanAudit(context.Background(), 1, func(r audit.Record) error {
		if r.Type == "session.ended" && r.Session == s.ID {
			ended++
		}
		return nil
	})
	if ended != 1 {
		t.Errorf("%d session.ended audit records, want 1", ended)
	}
}
