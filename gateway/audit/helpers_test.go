package audit_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"sync"
	"testing"
	"time"

	"supportgate/gateway/audit"
	"supportgate/gateway/audit/audittest"
)

// testKey is fixed so that golden files are stable (Ed25519 is deterministic).
var testKey = ed25519.NewKeyFromSeed([]byte("supportgate audit test key 32 b!"))

var testPub = testKey.Public().(ed25519.PublicKey)

// clock is a manual clock safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time // guarded by mu
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond) // every reading moves on a little
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newLog(t testing.TB, s audit.Store, c *clock, every int) *audit.Log {
	t.Helper()
	l, err := audit.New(audit.Config{Store: s, Signer: testKey, Now: c.Now, CheckpointEvery: every})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return l
}

func event(i int) audit.Event {
	return audit.Event{
		Type:    "session.created",
		Actor:   "alice",
		Role:    "agent",
		Session: fmt.Sprintf("s-%d", i),
		Remote:  "192.0.2.7:40000",
		Detail:  map[string]string{"scopes": "view,chat", "n": fmt.Sprint(i)},
	}
}

// filled returns a store holding n events, with a checkpoint every `every`
// records and a final one from Close.
func filled(t testing.TB, n, every int) *audittest.Store {
	t.Helper()
	s := audittest.NewStore()
	l := newLog(t, s, newClock(), every)
	for i := range n {
		if _, err := l.Append(context.Background(), event(i)); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return s
}

// sign makes a checkpoint signature as Log does, with any key.
func sign(key ed25519.PrivateKey, hash string) string {
	return base64.StdEncoding.EncodeToString(ed25519.Sign(key, append([]byte("supportgate audit checkpoint v1\x00"), hash...)))
}
