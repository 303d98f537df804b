package gateway_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"supportgate/gateway"
	"supportgate/gateway/identity"
	"supportgate/gateway/keys"
	"supportgate/gateway/sqlite"
	"supportgate/session"
	"supportgate/session/sessiontest"
)

// TestHeartbeatKilledIdle: a gateway sits idle for 40 minutes, nothing
// stored, and is killed (no clean shutdown: its store is closed under
// it); while it is down the host's wall clock is set back an hour. The
// restarted gateway's clock, held steady from the newest stored time as
// serve holds it, must start no earlier than the last heartbeat, and an
// active session's time box may end at most the downtime plus one
// heartbeat interval late in real time. Without the heartbeat the newest
// stored time is the approval, 40 minutes old, and the box ends that late.
func TestHeartbeatKilledIdle(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	mat, _, err := keys.LoadOrCreate(filepath.Join(dir, "data"), keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "test.db")
	// start opens the store and starts a gateway on it over wall, with the
	// floor serve gives its clock (cmd/supportgate steadyClock).
	start := func(wall *sessiontest.Clock) (*sqlite.Store, *gateway.Gateway, *session.SteadyClock) {
		t.Helper()
		st, err := sqlite.Open(path, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		floor, err := st.HighWater(ctx)
		if err != nil {
			t.Fatal(err)
		}
		clock := session.NewSteadyClock(wall, floor)
		g, err := gateway.New(gateway.Config{
			Store: st, Keys: mat, PublicURL: "https://127.0.0.1:8443",
			Policy:         session.Policy{IdleTimeout: -1},
			PasswordParams: identity.PasswordParams{Memory: 1024, Time: 1, Threads: 1},
			Clock:          clock,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Close() })
		if err := g.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return st, g, clock
	}

	wall := sessiontest.NewClock(t0)
	st, g, clock := start(wall)
	b := g.Broker()
	customer := session.Actor{Name: "customer", Role: "customer"}
	s, tok, err := b.Create(ctx, session.Actor{Name: "alice", Role: "agent"}, session.NewRequest{
		Agent: "alice", AgentName: "Alice", Customer: "ACME", Scopes: session.Scopes{{Kind: session.View}}, Duration: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := b.Open(ctx, tok, "", customer)
	if err != nil {
		t.Fatal(err)
	}
	if s, err = b.Approve(ctx, tok, key, session.Scopes{{Kind: session.View}}, customer); err != nil {
		t.Fatal(err)
	}
	const idle = 40 * time.Minute
	wall.Advance(idle)
	killed := clock.Now()
	left := s.ExpiresAt.Sub(killed) // the box's time left at the kill
	// Killed: the store goes away under the gateway, which stores nothing
	// more (its Close, in the cleanup, fails to write).
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	const downtime = time.Minute
	wall2 := sessiontest.NewClock(killed.Add(downtime - time.Hour))
	_, g2, clock2 := start(wall2)
	if now, beat := clock2.Now(), killed.Add(-gateway.HeartbeatInterval); now.Before(beat) {
		t.Errorf("restarted gateway's time %v, %v before the kill; want at most one heartbeat interval (%v) before it",
			now, killed.Sub(now), gateway.HeartbeatInterval)
	}
	// In real time the box has left at the restart what it had at the
	// kill less the downtime; it may end late by the downtime plus one
	// heartbeat interval, no more.
	wall2.Advance(left + gateway.HeartbeatInterval)
	got, err := g2.Broker().Get(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != session.Ended || got.EndReason != session.EndExpired {
		t.Fatalf("%v after the restart, with %v left at the kill %v before it: got %s/%s, want ended/expired",
			left+gateway.HeartbeatInterval, left, downtime, got.State, got.EndReason)
	}
}

// TestHeartbeatBeatsAndStops: a running gateway stores its time every
// HeartbeatInterval though nothing else happens, stores it once more when
// it closes, and not again after: Close leaves no beat pending.
func TestHeartbeatBeatsAndStops(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	highWater := func() time.Time {
		t.Helper()
		hw, err := e.store.HighWater(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return hw
	}
	started := highWater() // gateway.started
	e.clock.Advance(3*gateway.HeartbeatInterval - time.Second)
	if got, want := highWater(), started.Add(2*gateway.HeartbeatInterval); !got.Equal(want) {
		t.Errorf("HighWater after two beats = %v, want the second beat's time, %v", got, want)
	}
	e.clock.Advance(time.Second)
	if got, want := highWater(), started.Add(3*gateway.HeartbeatInterval); !got.Equal(want) {
		t.Errorf("HighWater after three beats = %v, want the third beat's time, %v", got, want)
	}
	e.clock.Advance(10 * time.Second)
	stopped := e.clock.Now()
	if err := e.g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.g.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if got := highWater(); !got.Equal(stopped) {
		t.Errorf("HighWater after Close = %v, want the time it closed at, %v", got, stopped)
	}
	e.clock.Advance(time.Hour)
	if got := highWater(); !got.Equal(stopped) {
		t.Errorf("HighWater an hour after Close = %v, want still %v: a beat after Close", got, stopped)
	}
}
