package sqlite

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"supportgate/gateway/audit"
)

func appendRecords(t *testing.T, st *Store, from, to uint64) {
	t.Helper()
	var recs []audit.Record
	for seq := from; seq <= to; seq++ {
		recs = append(recs, audit.Record{Seq: seq, Event: audit.Event{Type: "x", Time: time.Unix(1700000000, int64(seq)).UTC()}})
	}
	if err := st.AppendAudit(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
}

func openRO(t *testing.T, path string) *ReadOnly {
	t.Helper()
	ro, err := OpenReadOnly(path, Options{})
	if err != nil {
		t.Fatalf("OpenReadOnly: %v", err)
	}
	t.Cleanup(func() { ro.Close() })
	return ro
}

// wantRecords checks that ro holds records 1..n.
func wantRecords(t *testing.T, ro *ReadOnly, n uint64) {
	t.Helper()
	ctx := context.Background()
	var got uint64
	if err := ro.ScanAudit(ctx, 1, func(r audit.Record) error {
		got++
		if r.Seq != got {
			t.Errorf("ScanAudit: got seq %d, want %d", r.Seq, got)
		}
		return nil
	}); err != nil {
		t.Fatalf("ScanAudit: %v", err)
	}
	if got != n {
		t.Errorf("ScanAudit: got %d records, want %d", got, n)
	}
	last, ok, err := ro.LastAudit(ctx)
	if err != nil || ok != (n > 0) || last.Seq != n {
		t.Errorf("LastAudit: got %d, %v, %v; want %d, %v, nil", last.Seq, ok, err, n, n > 0)
	}
}

type fileStamp struct {
	size  int64
	mtime time.Time
}

func stamps(t *testing.T, dir string) map[string]fileStamp {
	t.Helper()
	m := map[string]fileStamp{}
	for _, p := range append([]string{dir}, mustGlob(t, filepath.Join(dir, "*"))...) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		m[p] = fileStamp{fi.Size(), fi.ModTime()}
	}
	return m
}

func mustGlob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sameStamps(t *testing.T, before, after map[string]fileStamp) {
	t.Helper()
	if len(after) != len(before) {
		t.Errorf("files: got %v, want %v", after, before)
	}
	for p, b := range before {
		if a := after[p]; a != b {
			t.Errorf("%s: got %+v, want it unchanged at %+v", p, a, b)
		}
	}
}

func TestOpenReadOnlyMissing(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{filepath.Join(dir, "none.db"), filepath.Join(dir, "no", "such.db")} {
		if ro, err := OpenReadOnly(p, Options{}); !errors.Is(err, fs.ErrNotExist) {
			if err == nil {
				ro.Close()
			}
			t.Errorf("OpenReadOnly(%q): got %v, want an error wrapping fs.ErrNotExist", p, err)
		}
	}
	if got := mustGlob(t, filepath.Join(dir, "*")); len(got) != 0 {
		t.Errorf("OpenReadOnly created %v", got)
	}
	for _, p := range []string{"", ":memory:", "file:x.db", filepath.Join(dir, "a?b.db"), dir} {
		if ro, err := OpenReadOnly(p, Options{}); err == nil {
			ro.Close()
			t.Errorf("OpenReadOnly(%q): got nil error, want one", p)
		}
	}
}

// TestOpenReadOnlyStopped reads a database whose Store has closed (no WAL
// file) and checks that nothing in its directory changes.
func TestOpenReadOnlyStopped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	st, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendRecords(t, st, 1, 600) // more than one scanChunk
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(path)
	before := stamps(t, dir)

	ro := openRO(t, path)
	wantRecords(t, ro, 600)
	if err := ro.AppendAudit(context.Background(), []audit.Record{{Seq: 601}}); !errors.Is(err, ErrReadOnly) {
		t.Errorf("AppendAudit: got %v, want ErrReadOnly", err)
	}
	for i := range 2 {
		if err := ro.Close(); err != nil {
			t.Errorf("Close #%d: %v", i+1, err)
		}
	}
	if _, _, err := ro.LastAudit(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("LastAudit after Close: got %v, want ErrClosed", err)
	}
	sameStamps(t, before, stamps(t, dir))
}

// TestOpenReadOnlyLive reads a database that a Store has open and keeps
// writing, and a copy of it taken meanwhile, as after a crash.
func TestOpenReadOnlyLive(t *testing.T) {
	st, path := openTemp(t)
	appendRecords(t, st, 1, 10)
	ro := openRO(t, path)
	wantRecords(t, ro, 10)
	appendRecords(t, st, 11, 20)
	wantRecords(t, ro, 20)

	copyDir := t.TempDir()
	cp := filepath.Join(copyDir, "c.db")
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(path + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cp+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	before := stamps(t, copyDir)
	ro2 := openRO(t, cp)
	wantRecords(t, ro2, 20)
	ro2.Close()
	after := stamps(t, copyDir)
	delete(before, cp+"-shm") // SQLite's shared memory, which it may rebuild
	delete(after, cp+"-shm")
	sameStamps(t, before, after)
}

func TestOpenReadOnlySchema(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if ro, err := OpenReadOnly(empty, Options{}); err == nil {
		ro.Close()
		t.Errorf("OpenReadOnly of an empty file: got nil error, want one")
	}
	if fi, err := os.Stat(empty); err != nil || fi.Size() != 0 {
		t.Errorf("after OpenReadOnly of an empty file: %v, %v; want it left empty", fi, err)
	}

	path := filepath.Join(dir, "n.db")
	st, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.wconn.ExecContext(context.Background(), "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future.sql', 0)", SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if ro, err := OpenReadOnly(path, Options{}); !errors.Is(err, ErrSchemaTooNew) {
		if err == nil {
			ro.Close()
		}
		t.Errorf("OpenReadOnly of a newer schema: got %v, want ErrSchemaTooNew", err)
	}
}
