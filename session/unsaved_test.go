package session_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"supportgate/session"
	"supportgate/session/sessiontest"
)

// hookStore lets a test decide, per session id, what UpdateSessions does.
type hookStore struct {
	*sessiontest.MemStore
	mu   sync.Mutex
	hook func(id string) error
}

func (h *hookStore) UpdateSessions(ctx context.Context, cs ...session.Change) error {
	h.mu.Lock()
	f := h.hook
	h.mu.Unlock()
	if f != nil && len(cs) == 1 {
		if err := f(cs[0].Session.ID); err != nil {
			return err
		}
	}
	return h.MemStore.UpdateSessions(ctx, cs...)
}
func (h *hookStore) set(f func(string) error) { h.mu.Lock(); h.hook = f; h.mu.Unlock() }

// TestUnstoredEndDuringClose: an end that fails to store while Close waits
// for a retry in flight is kept for Close's last attempt. A first version
// dropped it once the broker was closing, and the store kept the session
// active for the next start.
func TestUnstoredEndDuringClose(t *testing.T) {
	ctx := context.Background()
	st := &hookStore{MemStore: sessiontest.NewMemStore()}
	clock := sessiontest.NewClock(t0)
	b, _ := session.NewBroker(session.Config{Store: st, Clock: clock})
	b.Start(ctx)
	s1, s2 := approvedOn(t, b), approvedOn(t, b)
	disk := errors.New("disk full")
	st.set(func(string) error { return disk })
	b.Revoke(ctx, s1.ID, agent) // kept, retry armed
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	st.set(func(id string) error {
		if id == s1.ID {
			once.Do(func() { close(entered); <-release })
		}
		return disk
	})
	go clock.Advance(2 * time.Second) // the retry runs and blocks in the store
	<-entered
	closed := make(chan struct{})
	go func() { b.Close(); close(closed) }()
	for { // wait until Close has marked the broker closed
		if _, _, err := b.Create(ctx, agent, session.NewRequest{Agent: "bob", Customer: "X", Scopes: mustScopes(t, "view"), Duration: time.Minute}); errors.Is(err, session.ErrClosed) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Revoke(ctx, s2.ID, agent) // fails to store while Close waits
	st.set(nil)                 // the store recovers before Close's last attempt
	close(release)
	<-closed
	got, _ := st.MemStore.GetSession(ctx, s2.ID)
	if got.State != session.Ended {
		t.Errorf("after Close the store holds s2 %s: its end was dropped, not tried at Close", got.State)
	}
}

// approvedOn creates a 30-minute view session of alice's on b and has the
// customer approve it.
func approvedOn(t *testing.T, b *session.Broker) *session.Session {
	t.Helper()
	ctx := context.Background()
	s, tok, err := b.Create(ctx, agent, session.NewRequest{Agent: "alice", Customer: "ACME", Scopes: mustScopes(t, "view"), Duration: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	_, key, _ := b.Open(ctx, tok, "", customer)
	if _, err := b.Approve(ctx, tok, key, mustScopes(t, "view"), customer); err != nil {
		t.Fatal(err)
	}
	return s
}
