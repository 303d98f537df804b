package audit_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"supportgate/gateway/audit"
	"supportgate/gateway/audit/audittest"
)

func types(recs []audit.Record) string {
	var b strings.Builder
	for _, r := range recs {
		if r.Type == audit.CheckpointType {
			b.WriteString("C")
		} else {
			b.WriteString("e")
		}
	}
	return b.String()
}

func TestNewConfig(t *testing.T) {
	s := audittest.NewStore()
	for _, tc := range []struct {
		name string
		cfg  audit.Config
		want string
	}{
		{"no store", audit.Config{Signer: testKey}, "Store is required"},
		{"no signer", audit.Config{Store: s}, "Signer is required"},
		{"short signer", audit.Config{Store: s, Signer: testKey[:10]}, "Signer is required"},
		{"negative every", audit.Config{Store: s, Signer: testKey, CheckpointEvery: -1}, "CheckpointEvery"},
		{"negative interval", audit.Config{Store: s, Signer: testKey, CheckpointInterval: -1}, "CheckpointInterval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := audit.New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestAppendChains(t *testing.T) {
	ctx := context.Background()
	s := audittest.NewStore()
	c := newClock()
	l := newLog(t, s, c, 3)
	var got []audit.Record
	for i := range 7 {
		r, err := l.Append(ctx, event(i))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	stored := s.Records()
	if want := "eeeCeeeCeC"; types(stored) != want {
		t.Fatalf("got record kinds %s, want %s", types(stored), want)
	}
	if stored[0].Prev != audit.GenesisHash {
		t.Errorf("record 1: got prev %q, want GenesisHash", stored[0].Prev)
	}
	for i, r := range stored {
		if r.Seq != uint64(i+1) {
			t.Errorf("record %d: got seq %d", i+1, r.Seq)
		}
		if i > 0 && r.Prev != stored[i-1].Hash {
			t.Errorf("record %d: prev does not chain", r.Seq)
		}
		if r.Time.Location() != time.UTC || r.Time.Nanosecond()%1000 != 0 {
			t.Errorf("record %d: time %v is not UTC microseconds", r.Seq, r.Time)
		}
	}
	// Append returns what was stored.
	if got[3].Seq != 5 || got[3].Hash != stored[4].Hash {
		t.Errorf("Append 4: got seq %d hash %s, want the stored record 5", got[3].Seq, got[3].Hash)
	}
	cp := stored[3]
	if cp.Actor != audit.SystemActor || cp.Detail["reason"] != "count" || cp.Detail["key"] != audit.KeyID(testPub) {
		t.Errorf("checkpoint: got %+v", cp)
	}
	rep, err := audit.Verify(ctx, s, testPub)
	if err != nil {
		t.Fatal(err)
	}
	want := audit.Report{Records: 10, Checkpoints: 3, LastSeq: 10, Head: stored[9].Hash, LastCheckpoint: 10}
	if rep != want {
		t.Fatalf("got %+v, want %+v", rep, want)
	}
	if seq, head := l.Head(); seq != 10 || head != stored[9].Hash {
		t.Fatalf("Head: got %d %s, want 10 %s", seq, head, stored[9].Hash)
	}
}

func TestAppendKeepsCallerTime(t *testing.T) {
	s := audittest.NewStore()
	l := newLog(t, s, newClock(), 100)
	in := time.Date(2025, 1, 1, 12, 0, 0, 123456789, time.FixedZone("CET", 3600))
	r, err := l.Append(context.Background(), audit.Event{Time: in, Type: "login.success"})
	if err != nil {
		t.Fatal(err)
	}
	if want := in.UTC().Truncate(time.Microsecond); !r.Time.Equal(want) || r.Time.Location() != time.UTC {
		t.Fatalf("got time %v, want %v", r.Time, want)
	}
}

func TestCheckpointInterval(t *testing.T) {
	ctx := context.Background()
	s := audittest.NewStore()
	c := newClock()
	l, err := audit.New(audit.Config{Store: s, Signer: testKey, Now: c.Now, CheckpointInterval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, 0)
	mustAppend(t, l, 1)
	c.Advance(time.Minute)
	mustAppend(t, l, 2) // the interval has passed: a checkpoint follows
	mustAppend(t, l, 3)
	if want := "eeeCe"; types(s.Records()) != want {
		t.Fatalf("got %s, want %s", types(s.Records()), want)
	}
	if r := s.Records()[3]; r.Detail["reason"] != "interval" {
		t.Fatalf("got reason %q, want interval", r.Detail["reason"])
	}
	// Manual checkpoints cover what is unsigned and skip an idle log.
	for range 2 {
		if err := l.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if want := "eeeCeC"; types(s.Records()) != want {
		t.Fatalf("got %s, want %s", types(s.Records()), want)
	}
	// An idle log gains nothing from time passing, nor from Close.
	c.Advance(time.Hour)
	if err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if want := "eeeCeC"; types(s.Records()) != want {
		t.Fatalf("got %s, want %s", types(s.Records()), want)
	}
}

func mustAppend(t *testing.T, l *audit.Log, i int) audit.Record {
	t.Helper()
	r, err := l.Append(context.Background(), event(i))
	if err != nil {
		t.Fatalf("Append %d: %v", i, err)
	}
	return r
}

func TestClose(t *testing.T) {
	s := audittest.NewStore()
	l := newLog(t, s, newClock(), 100)
	mustAppend(t, l, 0)
	for range 3 {
		if err := l.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	if want := "eC"; types(s.Records()) != want {
		t.Fatalf("got %s, want %s", types(s.Records()), want)
	}
	if r := s.Records()[1]; r.Detail["reason"] != "close" {
		t.Fatalf("got reason %q, want close", r.Detail["reason"])
	}
	if _, err := l.Append(context.Background(), event(1)); !errors.Is(err, audit.ErrClosed) {
		t.Fatalf("Append after Close: got %v, want ErrClosed", err)
	}
	if err := l.Checkpoint(context.Background()); !errors.Is(err, audit.ErrClosed) {
		t.Fatalf("Checkpoint after Close: got %v, want ErrClosed", err)
	}
}

func TestStoreErrorKeepsHead(t *testing.T) {
	ctx := context.Background()
	s := audittest.NewStore()
	l := newLog(t, s, newClock(), 100)
	mustAppend(t, l, 0)
	seq, head := l.Head()
	boom := errors.New("disk full")
	s.FailNext(boom)
	if _, err := l.Append(ctx, event(1)); !errors.Is(err, boom) {
		t.Fatalf("got %v, want the store's error", err)
	}
	if s2, h2 := l.Head(); s2 != seq || h2 != head {
		t.Fatalf("head moved to %d after a store error, want %d", s2, seq)
	}
	r := mustAppend(t, l, 2)
	if r.Seq != 2 || r.Prev != head {
		t.Fatalf("after the error: got seq %d, want 2 chained to record 1", r.Seq)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Verify(ctx, s, testPub); err != nil {
		t.Fatal(err)
	}
}

func TestNewResumes(t *testing.T) {
	ctx := context.Background()
	s := audittest.NewStore()
	l := newLog(t, s, newClock(), 100)
	mustAppend(t, l, 0)
	// No Close: the process "crashed" with record 1 unsigned.
	l2 := newLog(t, s, newClock(), 100)
	r := mustAppend(t, l2, 1)
	if r.Seq != 2 || r.Prev != s.Records()[0].Hash {
		t.Fatalf("got seq %d prev %s, want 2 chained to record 1", r.Seq, r.Prev)
	}
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, s, testPub)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 3 || rep.Unsigned != 0 {
		t.Fatalf("got %+v, want 3 records, none unsigned", rep)
	}
}

func TestNewRefusesForgedHead(t *testing.T) {
	s := filled(t, 3, 100)
	s.Tamper(func(r []audit.Record) []audit.Record {
		r[len(r)-1].Actor = "mallory"
		return r
	})
	_, err := audit.New(audit.Config{Store: s, Signer: testKey})
	var te *audit.TamperError
	if !errors.As(err, &te) || te.Seq != 4 {
		t.Fatalf("got %v, want a TamperError for record 4", err)
	}
}

func TestAppendRejects(t *testing.T) {
	s := audittest.NewStore()
	l := newLog(t, s, newClock(), 100)
	for _, e := range []audit.Event{
		{Type: audit.CheckpointType, Actor: "system"},
		{Type: "login.failure", Detail: map[string]string{"password": "hunter2"}},
		{Type: ""},
	} {
		if _, err := l.Append(context.Background(), e); !errors.Is(err, audit.ErrInvalidEvent) {
			t.Errorf("Append(%+v): got %v, want ErrInvalidEvent", e, err)
		}
	}
	if n := len(s.Records()); n != 0 {
		t.Fatalf("got %d stored records, want 0", n)
	}
}

func TestAppendCancelled(t *testing.T) {
	s := audittest.NewStore()
	l := newLog(t, s, newClock(), 100)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Append(ctx, event(0)); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if n := len(s.Records()); n != 0 {
		t.Fatalf("got %d stored records, want 0", n)
	}
}

// slowStore delays every append so that callers pile up behind the leader.
type slowStore struct {
	*audittest.Store
	delay time.Duration

	mu      sync.Mutex
	batches int // guarded by mu
}

func (s *slowStore) AppendAudit(ctx context.Context, recs []audit.Record) error {
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	s.mu.Lock()
	s.batches++
	s.mu.Unlock()
	return s.Store.AppendAudit(ctx, recs)
}

func TestConcurrentAppend(t *testing.T) {
	ctx := context.Background()
	s := &slowStore{Store: audittest.NewStore(), delay: 200 * time.Microsecond}
	l, err := audit.New(audit.Config{Store: s, Signer: testKey, Now: newClock().Now, CheckpointEvery: 10})
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 16, 50
	var wg sync.WaitGroup
	seen := make([][]uint64, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				// Some callers give up while queued; they must leave no trace.
				cctx, cancel := context.WithCancel(ctx)
				if i%7 == 3 {
					cancel()
				}
				r, err := l.Append(cctx, event(w*each+i))
				cancel()
				if err != nil {
					if !errors.Is(err, context.Canceled) {
						t.Errorf("Append: %v", err)
					}
					continue
				}
				seen[w] = append(seen[w], r.Seq)
			}
			if w%4 == 0 {
				if err := l.Checkpoint(ctx); err != nil {
					t.Errorf("Checkpoint: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, s, testPub)
	if err != nil {
		t.Fatal(err)
	}
	// Every successful Append is stored, exactly once, and its own
	// records come back in the order it made them.
	stored := map[uint64]bool{}
	for _, r := range s.Records() {
		if r.Type != audit.CheckpointType {
			stored[r.Seq] = true
		}
	}
	n := 0
	for w, seqs := range seen {
		for i, seq := range seqs {
			if !stored[seq] {
				t.Fatalf("worker %d: seq %d returned but not stored", w, seq)
			}
			if i > 0 && seq <= seqs[i-1] {
				t.Fatalf("worker %d: seq %d after %d", w, seq, seqs[i-1])
			}
			n++
		}
	}
	if n != len(stored) {
		t.Fatalf("got %d stored events, want %d", len(stored), n)
	}
	if rep.Unsigned != 0 {
		t.Fatalf("got %d unsigned after Close, want 0", rep.Unsigned)
	}
	t.Logf("%d records in %d store calls", rep.Records, s.batches)
}

func TestVerifyKeySize(t *testing.T) {
	if _, err := audit.Verify(context.Background(), audittest.NewStore(), ed25519.PublicKey("short")); err == nil {
		t.Fatal("Verify with a 5-byte key: got nil error")
	}
}
