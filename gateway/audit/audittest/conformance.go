package audittest

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"supportgate/gateway/audit"
)

// RunStoreTests checks an audit.Store implementation against the contract
// documented on audit.Store. newStore must return a new, empty store each
// time it is called; it may register cleanups on t.
func RunStoreTests(t *testing.T, newStore func(t *testing.T) audit.Store) {
	t.Run("Empty", func(t *testing.T) { testEmpty(t, newStore(t)) })
	t.Run("AppendLastScan", func(t *testing.T) { testAppendLastScan(t, newStore(t)) })
	t.Run("RejectNonContiguous", func(t *testing.T) { testRejectNonContiguous(t, newStore(t)) })
	t.Run("BatchAtomic", func(t *testing.T) { testBatchAtomic(t, newStore(t)) })
	t.Run("ScanFromMiddle", func(t *testing.T) { testScanFromMiddle(t, newStore(t)) })
	t.Run("ScanStopsOnError", func(t *testing.T) { testScanStops(t, newStore(t)) })
	t.Run("ConcurrentAppendOneWins", func(t *testing.T) { testConcurrentOneWins(t, newStore(t)) })
	t.Run("LogRoundTripVerifies", func(t *testing.T) { testLogRoundTrip(t, newStore(t)) })
}

// rec returns a record with every field set, so that a store that drops or
// mangles one is caught by sameRecord.
func rec(seq uint64) audit.Record {
	return audit.Record{
		Seq: seq,
		Event: audit.Event{
			Time:    time.Date(2026, 3, 4, 5, 6, 7, int(seq)*1000+123000, time.UTC),
			Type:    "test.event",
			Actor:   fmt.Sprintf("agent-%d", seq),
			Role:    "agent",
			Session: "s-1",
			Remote:  "[2001:db8::1]:443",
			Detail:  map[string]string{"n": fmt.Sprint(seq), "note": "héllo \"quoted\" <tag> \n"},
		},
		Prev: fmt.Sprintf("%064x", seq-1),
		Hash: fmt.Sprintf("%064x", seq),
		Sig:  fmt.Sprintf("sig-%d", seq),
	}
}

func recs(from, to uint64) []audit.Record {
	var out []audit.Record
	for s := from; s <= to; s++ {
		out = append(out, rec(s))
	}
	return out
}

func sameRecord(t *testing.T, got, want audit.Record) {
	t.Helper()
	if !got.Time.Equal(want.Time) {
		t.Errorf("record %d: got time %v, want %v", want.Seq, got.Time, want.Time)
	}
	g, w := got, want
	g.Time, w.Time = time.Time{}, time.Time{}
	if fmt.Sprint(g) != fmt.Sprint(w) { // fmt sorts map keys
		t.Errorf("record %d:\ngot  %+v\nwant %+v", want.Seq, g, w)
	}
}

func scanAll(t *testing.T, s audit.Store, from uint64) []audit.Record {
	t.Helper()
	var out []audit.Record
	if err := s.ScanAudit(context.Background(), from, func(r audit.Record) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatalf("ScanAudit(%d): %v", from, err)
	}
	return out
}

func checkSeqs(t *testing.T, got []audit.Record, from, to uint64) {
	t.Helper()
	var want []uint64
	for s := from; s <= to && to > 0; s++ {
		want = append(want, s)
	}
	var seqs []uint64
	for _, r := range got {
		seqs = append(seqs, r.Seq)
	}
	if fmt.Sprint(seqs) != fmt.Sprint(want) {
		t.Fatalf("got seqs %v, want %v", seqs, want)
	}
}

func checkLast(t *testing.T, s audit.Store, want uint64) {
	t.Helper()
	last, ok, err := s.LastAudit(context.Background())
	if err != nil {
		t.Fatalf("LastAudit: %v", err)
	}
	if want == 0 {
		if ok {
			t.Fatalf("LastAudit: got record %d, want none", last.Seq)
		}
		return
	}
	if !ok {
		t.Fatalf("LastAudit: got none, want record %d", want)
	}
	sameRecord(t, last, rec(want))
}

func mustAppend(t *testing.T, s audit.Store, rs []audit.Record) {
	t.Helper()
	if err := s.AppendAudit(context.Background(), rs); err != nil {
		t.Fatalf("AppendAudit(%d..): %v", rs[0].Seq, err)
	}
}

func testEmpty(t *testing.T, s audit.Store) {
	checkLast(t, s, 0)
	checkSeqs(t, scanAll(t, s, 1), 0, 0)
	if err := s.AppendAudit(context.Background(), nil); err != nil {
		t.Fatalf("AppendAudit(empty batch): got %v, want nil", err)
	}
	checkLast(t, s, 0)
}

func testAppendLastScan(t *testing.T, s audit.Store) {
	mustAppend(t, s, recs(1, 1))
	checkLast(t, s, 1)
	mustAppend(t, s, recs(2, 4))
	mustAppend(t, s, recs(5, 5))
	checkLast(t, s, 5)
	got := scanAll(t, s, 1)
	checkSeqs(t, got, 1, 5)
	for i, r := range got {
		sameRecord(t, r, rec(uint64(i+1)))
	}
	checkSeqs(t, scanAll(t, s, 0), 1, 5)
}

func testRejectNonContiguous(t *testing.T, s audit.Store) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		batch []audit.Record
	}{
		{"first seq 2 on empty store", recs(2, 2)},
		{"first seq 0", []audit.Record{rec(0)}},
	} {
		if err := s.AppendAudit(ctx, tc.batch); !errors.Is(err, audit.ErrNotContiguous) {
			t.Errorf("%s: got %v, want ErrNotContiguous", tc.name, err)
		}
	}
	mustAppend(t, s, recs(1, 3))
	for _, tc := range []struct {
		name  string
		batch []audit.Record
	}{
		{"duplicate seq", recs(3, 3)},
		{"old seq", recs(1, 2)},
		{"gap", recs(5, 5)},
		{"gap inside batch", []audit.Record{rec(4), rec(6)}},
		{"repeat inside batch", []audit.Record{rec(4), rec(4)}},
		{"reversed batch", []audit.Record{rec(5), rec(4)}},
	} {
		if err := s.AppendAudit(ctx, tc.batch); !errors.Is(err, audit.ErrNotContiguous) {
			t.Errorf("%s: got %v, want ErrNotContiguous", tc.name, err)
		}
	}
	checkLast(t, s, 3)
	checkSeqs(t, scanAll(t, s, 1), 1, 3)
}

func testBatchAtomic(t *testing.T, s audit.Store) {
	mustAppend(t, s, recs(1, 2))
	bad := append(recs(3, 5), rec(7))
	if err := s.AppendAudit(context.Background(), bad); err == nil {
		t.Fatal("AppendAudit(3,4,5,7): got nil error, want one")
	}
	checkLast(t, s, 2)
	checkSeqs(t, scanAll(t, s, 1), 1, 2)
	mustAppend(t, s, recs(3, 5))
	checkLast(t, s, 5)
}

func testScanFromMiddle(t *testing.T, s audit.Store) {
	mustAppend(t, s, recs(1, 10))
	for _, tc := range []struct{ from, first, last uint64 }{
		{1, 1, 10}, {4, 4, 10}, {10, 10, 10}, {11, 0, 0}, {1000, 0, 0},
	} {
		got := scanAll(t, s, tc.from)
		checkSeqs(t, got, tc.first, tc.last)
		if len(got) > 0 {
			sameRecord(t, got[0], rec(tc.first))
		}
	}
}

func testScanStops(t *testing.T, s audit.Store) {
	mustAppend(t, s, recs(1, 5))
	stop := errors.New("stop here")
	n := 0
	err := s.ScanAudit(context.Background(), 1, func(r audit.Record) error {
		n++
		if r.Seq == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("ScanAudit: got %v, want the callback's error", err)
	}
	if n != 3 {
		t.Fatalf("ScanAudit: callback ran %d times, want 3", n)
	}
}

func testConcurrentOneWins(t *testing.T, s audit.Store) {
	const rounds, writers = 10, 8
	for seq := uint64(1); seq <= rounds; seq++ {
		var wg sync.WaitGroup
		errs := make([]error, writers)
		for w := range writers {
			wg.Go(func() {
				r := rec(seq)
				r.Actor = fmt.Sprintf("writer-%d", w)
				errs[w] = s.AppendAudit(context.Background(), []audit.Record{r})
			})
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, audit.ErrNotContiguous):
				t.Errorf("seq %d: got %v, want nil or ErrNotContiguous", seq, err)
			}
		}
		if wins != 1 {
			t.Fatalf("seq %d: %d writers won, want exactly 1", seq, wins)
		}
	}
	checkSeqs(t, scanAll(t, s, 1), 1, rounds)
}

func testLogRoundTrip(t *testing.T, s audit.Store) {
	ctx := context.Background()
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	clock := time.Date(2026, 1, 2, 3, 4, 5, 987654321, time.FixedZone("X", 5*3600+1800))
	l, err := audit.New(audit.Config{
		Store:           s,
		Signer:          key,
		Now:             func() time.Time { clock = clock.Add(1234567 * time.Nanosecond); return clock },
		CheckpointEvery: 4,
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := l.Append(ctx, audit.Event{
			Type: "session.created", Actor: "alice", Role: "agent", Session: fmt.Sprintf("s%d", i),
			Remote: "192.0.2.1:5555", Detail: map[string]string{"scopes": "view,chat", "é": "ü\u2028<>&"},
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, s, key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatalf("Verify after a Log wrote to the store: %v (the store must give back every field exactly)", err)
	}
	if rep.Unsigned != 0 || rep.Checkpoints == 0 {
		t.Fatalf("Verify: got %+v, want checkpoints and no unsigned records", rep)
	}
}
