package sqlite

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"supportgate/gateway/audit"
)

func TestScanSessionAudit(t *testing.T) {
	st, _ := openTemp(t)
	ctx := context.Background()
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	now := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	l, err := audit.New(audit.Config{Store: st, Signer: key, Now: func() time.Time { return now }, CheckpointEvery: 7})
	if err != nil {
		t.Fatal(err)
	}
	// 1500 records spread over three sessions and none, so that a scan
	// crosses chunks.
	want := map[string][]uint64{}
	for i := range 1500 {
		sess := []string{"", "aaaa", "bbbb", "aaaa"}[i%4]
		rec, err := l.Append(ctx, audit.Event{Type: "test.event", Actor: "alice", Session: sess, Detail: map[string]string{"n": fmt.Sprint(i)}})
		if err != nil {
			t.Fatal(err)
		}
		want[sess] = append(want[sess], rec.Seq)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		session string
		from    uint64
	}{{"aaaa", 0}, {"bbbb", 0}, {"aaaa", 900}, {"", 0}, {"cccc", 0}, {"aaaa", 1 << 62}} {
		var got []uint64
		err := st.ScanSessionAudit(ctx, tt.session, tt.from, func(r audit.Record) error {
			if r.Session != tt.session {
				t.Fatalf("record %d: session %q, want %q", r.Seq, r.Session, tt.session)
			}
			if r.ComputeHash() != r.Hash {
				t.Fatalf("record %d does not read back as stored", r.Seq)
			}
			got = append(got, r.Seq)
			return nil
		})
		if err != nil {
			t.Fatalf("ScanSessionAudit(%q, %d): %v", tt.session, tt.from, err)
		}
		var exp []uint64
		if tt.session != "" {
			for _, s := range want[tt.session] {
				if s >= tt.from {
					exp = append(exp, s)
				}
			}
		}
		if !slices.Equal(got, exp) {
			t.Errorf("ScanSessionAudit(%q, %d): got %d records, want %d", tt.session, tt.from, len(got), len(exp))
		}
	}

	// fn's error stops the scan and comes back.
	stop := fmt.Errorf("stop")
	n := 0
	err = st.ScanSessionAudit(ctx, "aaaa", 0, func(audit.Record) error { n++; return stop })
	if err != stop || n != 1 {
		t.Errorf("ScanSessionAudit with a failing fn: got %v after %d records, want stop after 1", err, n)
	}

	// The scan reads through the session index, not the whole table.
	rows, err := st.reader.Query("EXPLAIN QUERY PLAN SELECT "+auditCols+
		" FROM audit_records WHERE session = ? AND session <> '' AND seq >= ? ORDER BY seq LIMIT ?", "aaaa", 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if p := strings.Join(plan, "; "); !strings.Contains(p, "audit_records_session") || strings.Contains(p, "TEMP B-TREE") {
		t.Errorf("query plan %q: want a search of audit_records_session without a sort", p)
	}
}
