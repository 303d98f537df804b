package sessiontest

import (
	"context"
	"testing"
	"time"

	"supportgate/session"
)

// RunHighWaterTests checks that a session.HighWaterStore keeps the
// contract of HighWater and SetHeartbeat. newStore must return an empty
// store for each call and register its own cleanup with t.Cleanup.
//
// It pins down: an empty store's HighWater is the zero time; HighWater is
// never earlier than the newest stored session time nor than the
// heartbeat; SetHeartbeat replaces the heartbeat, so a later call with an
// earlier time (a clock reset) lowers HighWater again, and the zero time
// clears it; heartbeats keep to the microsecond.
func RunHighWaterTests(t *testing.T, newStore func(t *testing.T) session.HighWaterStore) {
	t.Helper()
	tests := []struct {
		name string
		f    func(t *testing.T, st session.HighWaterStore)
	}{
		{"Empty", testHighWaterEmpty},
		{"Sessions", testHighWaterSessions},
		{"Heartbeat", testHeartbeat},
		{"HeartbeatReplaced", testHeartbeatReplaced},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.f(t, newStore(t)) })
	}
}

func highWater(t *testing.T, st session.HighWaterStore) time.Time {
	t.Helper()
	hw, err := st.HighWater(context.Background())
	if err != nil {
		t.Fatalf("HighWater: %v", err)
	}
	return hw
}

func setHeartbeat(t *testing.T, st session.HighWaterStore, at time.Time) {
	t.Helper()
	if err := st.SetHeartbeat(context.Background(), at); err != nil {
		t.Fatalf("SetHeartbeat(%v): %v", at, err)
	}
}

func testHighWaterEmpty(t *testing.T, st session.HighWaterStore) {
	if hw := highWater(t, st); !hw.IsZero() {
		t.Errorf("HighWater of an empty store = %v, want the zero time", hw)
	}
}

func testHighWaterSessions(t *testing.T, st session.HighWaterStore) {
	create(t, st, minimal("a1", 1, base), minimal("a2", 2, base.Add(time.Hour)))
	if hw := highWater(t, st); hw.Before(base.Add(time.Hour)) {
		t.Errorf("HighWater = %v, want at least the newest session's creation, %v", hw, base.Add(time.Hour))
	}
}

func testHeartbeat(t *testing.T, st session.HighWaterStore) {
	create(t, st, minimal("a1", 1, base))
	beat := base.Add(3 * time.Hour)
	setHeartbeat(t, st, beat)
	if hw := highWater(t, st); !hw.Equal(beat) {
		t.Errorf("HighWater after a heartbeat 3h after the only session = %v, want the heartbeat, %v", hw, beat)
	}
	// A heartbeat before the stored sessions lowers nothing.
	setHeartbeat(t, st, base.Add(-time.Hour))
	if hw := highWater(t, st); hw.Before(base) {
		t.Errorf("HighWater after an earlier heartbeat = %v, want at least the session's creation, %v", hw, base)
	}
}

func testHeartbeatReplaced(t *testing.T, st session.HighWaterStore) {
	far := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	setHeartbeat(t, st, far)
	if hw := highWater(t, st); !hw.Equal(far) {
		t.Fatalf("HighWater after a heartbeat in 2099 = %v, want %v", hw, far)
	}
	setHeartbeat(t, st, base)
	if hw := highWater(t, st); !hw.Equal(base) {
		t.Errorf("HighWater after the heartbeat was set back = %v, want the new heartbeat, %v", hw, base)
	}
	setHeartbeat(t, st, time.Time{})
	if hw := highWater(t, st); !hw.IsZero() {
		t.Errorf("HighWater of a store whose heartbeat was cleared = %v, want the zero time", hw)
	}
}
