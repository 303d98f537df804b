package gateway_test

import (
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"
	"time"

	"supportgate/gateway"
	"supportgate/gateway/audit"
	"supportgate/session"
)

// TestEndOpenSessions: over a stopped gateway's store, EndOpenSessions
// ends the active and the requested session, revoked by the actor given
// at the time given, each with its session.ended record in the chain (which
// verifies), flags the active one's recording that a crash left without
// its end as cut short, and leaves a session already ended alone.
func TestEndOpenSessions(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	b := e.g.Broker()
	create := func() (*session.Session, string) {
		t.Helper()
		s, tok, err := b.Create(ctx, session.Actor{Name: "alice", Role: "agent"}, session.NewRequest{
			Agent: "alice", AgentName: "Alice", Customer: "ACME", Scopes: session.Scopes{{Kind: session.View}}, Duration: 30 * time.Minute,
		})
		if err != nil {
			t.Fatal(err)
		}
		return s, tok
	}
	customer := session.Actor{Name: "customer", Role: "customer"}
	active, tok := create()
	_, key, err := b.Open(ctx, tok, "", customer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Approve(ctx, tok, key, session.Scopes{{Kind: session.View}}, customer); err != nil {
		t.Fatal(err)
	}
	requested, _ := create()
	done, _ := create()
	if _, err := b.Revoke(ctx, done.ID, session.Actor{Name: "alice", Role: "agent"}); err != nil {
		t.Fatal(err)
	}
	if err := e.g.Close(); err != nil {
		t.Fatal(err)
	}
	// What a crash leaves of the active session's recording: no end.
	dir := filepath.Join(e.mat.Dir, gateway.RecordingsDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, active.ID+".sgrec"), []byte("cut"), 0o600); err != nil {
		t.Fatal(err)
	}

	at := t0.Add(-time.Hour) // the wall clock the operator accepts
	log, err := audit.New(audit.Config{Store: e.store, Signer: e.mat.SigningKey, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	admin := session.Actor{Name: "local-admin", Role: "admin", Remote: "local"}
	ended, err := gateway.EndOpenSessions(ctx, gateway.OfflineEnd{Store: e.store, Audit: log, RecordingsDir: dir, At: at, By: admin})
	if err != nil {
		t.Fatal(err)
	}
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	if len(ended) != 2 {
		t.Errorf("ended %d sessions, want 2", len(ended))
	}
	for _, id := range []string{active.ID, requested.ID} {
		s, err := e.store.GetSession(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if s.State != session.Ended || s.EndReason != session.EndRevoked || s.EndedBy != admin.Name || !s.EndedAt.Equal(at) {
			t.Errorf("%s: %s/%s by %q at %v, want ended/revoked by local-admin at %v", id, s.State, s.EndReason, s.EndedBy, s.EndedAt, at)
		}
	}
	if s, _ := e.store.GetSession(ctx, done.ID); s.EndedBy != "alice" {
		t.Errorf("the session alice revoked is now ended by %q", s.EndedBy)
	}
	got := map[string][]string{} // session: record types from the reset's time on
	err = e.store.ScanAudit(ctx, 1, func(r audit.Record) error {
		if r.Time.Equal(at) && r.Session != "" {
			got[r.Session] = append(got[r.Session], r.Type+" by "+r.Actor)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string][]string{
		active.ID:    {"session.ended by local-admin", "recording.cut_short by system"},
		requested.ID: {"session.ended by local-admin"},
	} {
		if g := got[id]; len(g) != len(want) || g[0] != want[0] || (len(g) > 1 && g[1] != want[1]) {
			t.Errorf("records of %s at the reset's time: %q, want %q", id, g, want)
		}
	}
	if _, err := audit.Verify(ctx, e.store, e.mat.SigningKey.Public().(ed25519.PublicKey)); err != nil {
		t.Errorf("audit chain: %v", err)
	}
}
