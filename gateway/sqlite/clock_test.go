package sqlite

import (
	"context"
	"crypto/ed25519"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"supportgate/gateway/audit"
	"supportgate/session"
	"supportgate/session/sessiontest"
)

// TestRestartWithClockBehind: the gateway stops, its host's wall clock is
// set back an hour (a VM restored from a snapshot, a bad NTP server, an
// operator typing date) and the gateway starts again a minute later on the
// same database. No deadline may gain that hour: each falls at most the
// downtime later, in real time, than it would have without the restart.
func TestRestartWithClockBehind(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	customer := session.Actor{Name: "customer", Role: "customer"}
	const downtime = time.Minute
	tests := []struct {
		name string
		pol  session.Policy
		// before runs in the first life and says how long, in real time
		// after the stop, the session has left.
		before func(t *testing.T, b *session.Broker, c *sessiontest.Clock, tok string) time.Duration
		want   session.EndReason
	}{
		{"time box", session.Policy{IdleTimeout: -1}, func(t *testing.T, b *session.Broker, c *sessiontest.Clock, tok string) time.Duration {
			approveView(t, b, tok, customer)
			c.Advance(20 * time.Minute) // of 30
			return 10 * time.Minute
		}, session.EndExpired},
		{"consent link", session.Policy{}, func(t *testing.T, b *session.Broker, c *sessiontest.Clock, tok string) time.Duration {
			c.Advance(5 * time.Minute) // of the 15 a link lives
			return 10 * time.Minute
		}, session.EndLinkExpired},
		{"idle", session.Policy{}, func(t *testing.T, b *session.Broker, c *sessiontest.Clock, tok string) time.Duration {
			approveView(t, b, tok, customer)
			c.Advance(5 * time.Minute)
			// A restart counts as activity: a full idle timeout from it.
			return 10 * time.Minute
		}, session.EndIdle},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "supportgate.db")
			st, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			clock := sessiontest.NewClock(start)
			b, err := session.NewBroker(session.Config{Store: st, Policy: tt.pol, Clock: clock})
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Start(ctx); err != nil {
				t.Fatal(err)
			}
			s, tok, err := b.Create(ctx, session.Actor{Name: "alice", Role: "agent"}, session.NewRequest{
				Agent: "alice", AgentName: "Alice", Customer: "ACME", Scopes: session.Scopes{{Kind: session.View}}, Duration: 30 * time.Minute,
			})
			if err != nil {
				t.Fatal(err)
			}
			left := tt.before(t, b, clock, tok)
			// The gateway audits its stop (gateway.stopped) after the broker's.
			b.Close()
			stopped := clock.Now()
			log, err := audit.New(audit.Config{Store: st, Signer: ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)), Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := log.Append(ctx, audit.Event{Type: "gateway.stopped", Actor: "system", Role: "system"}); err != nil {
				t.Fatal(err)
			}
			if err := log.Close(); err != nil {
				t.Fatal(err)
			}
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}

			st, err = Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			clock = sessiontest.NewClock(stopped.Add(downtime - time.Hour))
			b, err = session.NewBroker(session.Config{Store: st, Policy: tt.pol, Clock: clock})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if err := b.Start(ctx); err != nil {
				t.Fatal(err)
			}
			if got, _ := b.Get(ctx, s.ID); got.State == session.Ended {
				t.Fatalf("ended at the restart, %v before its deadline", left)
			}
			clock.Advance(left)
			got, err := b.Get(ctx, s.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != session.Ended || got.EndReason != tt.want {
				t.Fatalf("%v after the restart, the time the session had left at the stop: got %s/%s, want ended/%s", left, got.State, got.EndReason, tt.want)
			}
			stored, err := st.GetSession(ctx, s.ID)
			if err != nil || stored.State != session.Ended {
				t.Fatalf("stored: %v, %v; want ended", stored.State, err)
			}
			if !stored.EndedAt.After(stopped) {
				t.Errorf("stored EndedAt %v, not after the stop at %v", stored.EndedAt, stopped)
			}
		})
	}
}

// approveView opens the consent link and approves view.
func approveView(t *testing.T, b *session.Broker, tok string, by session.Actor) {
	t.Helper()
	ctx := context.Background()
	_, key, err := b.Open(ctx, tok, "", by)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Approve(ctx, tok, key, session.Scopes{{Kind: session.View}}, by); err != nil {
		t.Fatal(err)
	}
}

// TestHighWater: the newest time the store holds, wherever it is, even
// when the newest audit record is not the latest in time.
func TestHighWater(t *testing.T) {
	ctx := context.Background()
	st, _ := openTemp(t)
	checkHighWater(t, st, "empty", time.Time{})

	t0 := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	s := &session.Session{ID: "0123456789abcdef", Agent: "alice", Customer: "ACME", Requested: session.Scopes{{Kind: session.View}},
		Duration: time.Hour, State: session.Requested, CreatedAt: t0, ConsentExpiresAt: t0.Add(15 * time.Minute), Version: 1}
	if err := st.CreateSession(ctx, session.Change{Session: s}); err != nil {
		t.Fatal(err)
	}
	checkHighWater(t, st, "a session", t0)

	next := s.Clone()
	next.State, next.ApprovedAt, next.LastActivity, next.ExpiresAt, next.Version = session.Active, t0.Add(time.Minute), t0.Add(2*time.Minute), t0.Add(61*time.Minute), 2
	if err := st.UpdateSessions(ctx, session.Change{Session: next, Before: s}); err != nil {
		t.Fatal(err)
	}
	checkHighWater(t, st, "the session approved", t0.Add(2*time.Minute))

	at := t0.Add(time.Hour)
	log, err := audit.New(audit.Config{Store: st, Signer: ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)), Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []time.Duration{0, -time.Hour} { // the clock went back between the two
		if _, err := log.Append(ctx, audit.Event{Type: "test.event", Actor: "system", Time: at.Add(d)}); err != nil {
			t.Fatal(err)
		}
	}
	checkHighWater(t, st, "audit records, the newest one older", at)

	// A record from a clock that ran decades ahead holds HighWater there,
	// until a clock reset accepts the wall clock: then only the records
	// from the reset on count, not the sessions' times nor older records.
	far := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := log.Append(ctx, audit.Event{Type: "test.event", Actor: "system", Time: far}); err != nil {
		t.Fatal(err)
	}
	checkHighWater(t, st, "a record from 2099", far)
	wall := t0.Add(3 * time.Hour)
	if _, err := log.Append(ctx, audit.Event{Type: ClockResetEvent, Actor: "local-admin", Time: wall}); err != nil {
		t.Fatal(err)
	}
	checkHighWater(t, st, "after a clock reset", wall)
	if _, err := log.Append(ctx, audit.Event{Type: "test.event", Actor: "system", Time: wall.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	checkHighWater(t, st, "a record after the reset", wall.Add(time.Minute))
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestHeartbeatClockReset: the heartbeat counts in HighWater, and a clock
// reset sets aside a heartbeat stored before it, as it does the records
// before it, or the heartbeat a gateway wrote while its clock ran ahead
// would undo the reset; a heartbeat stored after the reset counts again.
func TestHeartbeatClockReset(t *testing.T) {
	ctx := context.Background()
	st, path := openTemp(t)
	t0 := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	log, err := audit.New(audit.Config{Store: st, Signer: ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)), Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := log.Append(ctx, audit.Event{Type: "gateway.started", Actor: "system", Time: t0}); err != nil {
		t.Fatal(err)
	}
	beat := t0.Add(5 * time.Hour)
	if err := st.SetHeartbeat(ctx, beat); err != nil {
		t.Fatal(err)
	}
	checkHighWater(t, st, "a heartbeat 5h after the last record", beat)
	if err := st.SetHeartbeat(ctx, beat.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	checkHighWater(t, st, "the next heartbeat", beat.Add(30*time.Second))
	var rows int
	if err := st.reader.QueryRowContext(ctx, `SELECT COUNT(*) FROM heartbeat`).Scan(&rows); err != nil || rows != 1 {
		t.Errorf("heartbeat rows after two beats: %d, %v; want one, updated in place", rows, err)
	}

	// The reset's own time is the wall clock, behind the heartbeat.
	wall := t0.Add(time.Hour)
	if _, err := log.Append(ctx, audit.Event{Type: ClockResetEvent, Actor: "local-admin", Time: wall}); err != nil {
		t.Fatal(err)
	}
	checkHighWater(t, st, "after a clock reset", wall)
	if err := errors.Join(log.Close(), st.Close()); err != nil {
		t.Fatal(err)
	}
	if st, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	checkHighWater(t, st, "after a clock reset and a restart", wall)
	if err := st.SetHeartbeat(ctx, wall.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	checkHighWater(t, st, "a heartbeat after the reset", wall.Add(time.Minute))
}

// checkHighWater fails t unless st's HighWater is want; what names the
// step.
func checkHighWater(t *testing.T, st *Store, what string, want time.Time) {
	t.Helper()
	got, err := st.HighWater(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(want) {
		t.Fatalf("%s: HighWater = %v, want %v", what, got, want)
	}
}
