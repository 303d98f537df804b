package sqlite

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"supportgate/gateway/audit"
	"supportgate/session"
)

// TestChainedAcrossProcesses runs two Logs over two Stores on one file, as
// a gateway and `supportgate admin` would, while session changes carry
// their audit records in their own transactions and plain Appends go
// through the Logs. Every write must succeed, the chain must verify, and
// a change that fails must leave no record behind.
func TestChainedAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	a, path := openTemp(t)
	b, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	newLog := func(st *Store) *audit.Log {
		l, err := audit.New(audit.Config{Store: st, Signer: priv, CheckpointEvery: 7})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	la, lb := newLog(a), newLog(b)

	const workers, per = 8, 20
	errs := make(chan error, workers*per*3)
	var wg sync.WaitGroup
	for w := range workers {
		st, l := a, la
		if w%2 == 1 {
			st, l = b, lb
		}
		wg.Go(func() {
			for i := range per {
				id := fmt.Sprintf("w%d-%02d", w, i)
				s := &session.Session{ID: id, Agent: "ann", TokenHash: [32]byte{byte(w), byte(i), 1},
					CreatedAt: time.Unix(int64(1000+i), 0), State: session.Requested, Version: 1}
				chain, err := l.Chain([]audit.Event{{Type: "session.created", Actor: "ann", Session: id}})
				if err != nil {
					errs <- err
					return
				}
				if err := st.CreateSessionChained(ctx, s, chain); err != nil {
					errs <- fmt.Errorf("create %s: %w", id, err)
				}
				next := s.Clone()
				next.State, next.Version = session.Active, 2
				chain, _ = l.Chain([]audit.Event{{Type: "session.approved", Actor: "customer", Session: id}})
				if err := st.UpdateSessionsChained(ctx, []session.Change{{Session: next, Before: s}}, chain); err != nil {
					errs <- fmt.Errorf("approve %s: %w", id, err)
				}
				if _, err := l.Append(ctx, audit.Event{Type: "test.other", Actor: "x"}); err != nil {
					errs <- fmt.Errorf("append: %w", err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// A stale version fails, and takes its record with it.
	stale := &session.Session{ID: "w0-00", Agent: "ann", TokenHash: [32]byte{0, 0, 1},
		CreatedAt: time.Unix(1000, 0), State: session.Ended, Version: 2}
	chain, _ := la.Chain([]audit.Event{{Type: "session.ended", Actor: "ann", Session: "w0-00"}})
	if err := a.UpdateSessionsChained(ctx, []session.Change{{Session: stale}}, chain); !errors.Is(err, session.ErrConflict) {
		t.Errorf("stale update: got %v, want ErrConflict", err)
	}
	// Both Logs go on chaining correctly after the rollback.
	for _, l := range []*audit.Log{la, lb} {
		if _, err := l.Append(ctx, audit.Event{Type: "test.after", Actor: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := la.Close(); err != nil {
		t.Fatal(err)
	}
	if err := lb.Close(); err != nil {
		t.Fatal(err)
	}

	rep, err := audit.Verify(ctx, a, pub)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	counts := map[string]int{}
	if err := a.ScanAudit(ctx, 1, func(r audit.Record) error { counts[r.Type]++; return nil }); err != nil {
		t.Fatal(err)
	}
	for typ, want := range map[string]int{"session.created": workers * per, "session.approved": workers * per,
		"test.other": workers * per, "test.after": 2, "session.ended": 0} {
		if counts[typ] != want {
			t.Errorf("%s records: got %d, want %d", typ, counts[typ], want)
		}
	}
	if rep.Unsigned != 0 {
		t.Errorf("unsigned records after Close: got %d, want 0", rep.Unsigned)
	}
	if rep.Checkpoints < uint64(3*workers*per/7) {
		t.Errorf("checkpoints: got %d, want at least %d (one per 7 records)", rep.Checkpoints, 3*workers*per/7)
	}
}
