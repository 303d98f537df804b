package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"supportgate/gateway/audit"
	"supportgate/gateway/audit/audittest"
	"supportgate/gateway/users"
	"supportgate/gateway/users/userstest"
	"supportgate/session"
	"supportgate/session/sessiontest"
)

func openTemp(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "supportgate.db")
	st, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return st, path
}

func TestSessionStore(t *testing.T) {
	sessiontest.RunStoreTests(t, func(t *testing.T) session.Store { st, _ := openTemp(t); return st })
}

func TestHighWaterStore(t *testing.T) {
	sessiontest.RunHighWaterTests(t, func(t *testing.T) session.HighWaterStore { st, _ := openTemp(t); return st })
}

func TestUsersStore(t *testing.T) {
	userstest.RunStoreTests(t, func(t *testing.T) users.Store { st, _ := openTemp(t); return st })
}

func TestAuditStore(t *testing.T) {
	audittest.RunStoreTests(t, func(t *testing.T) audit.Store { st, _ := openTemp(t); return st })
}

func TestOpenSettings(t *testing.T) {
	st, path := openTemp(t)
	ctx := context.Background()
	// Write something so the WAL exists.
	if err := st.CreateUser(ctx, &users.User{Name: "alice", Role: "agent"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("stat: %v", err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("%s: got mode %v, want 0600", filepath.Base(p), got)
		}
	}
	tests := []struct {
		db     string
		pragma string
		want   string
	}{
		{"writer", "journal_mode", "wal"},
		{"writer", "synchronous", "1"}, // NORMAL
		{"writer", "foreign_keys", "1"},
		{"writer", "busy_timeout", "5000"},
		{"writer", "wal_autocheckpoint", "10000"}, // the backstop; see checkpointer
		{"reader", "journal_mode", "wal"},
		{"reader", "query_only", "1"},
		{"reader", "busy_timeout", "5000"},
	}
	for _, tt := range tests {
		var db interface {
			QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
		} = st.wconn
		if tt.db == "reader" {
			db = st.reader
		}
		var got string
		if err := db.QueryRowContext(ctx, "PRAGMA "+tt.pragma).Scan(&got); err != nil {
			t.Fatalf("%s PRAGMA %s: %v", tt.db, tt.pragma, err)
		}
		if got != tt.want {
			t.Errorf("%s PRAGMA %s: got %q, want %q", tt.db, tt.pragma, got, tt.want)
		}
	}
	// The read pool cannot write even if a bug sends a write there.
	if _, err := st.reader.ExecContext(ctx, "DELETE FROM users"); err == nil {
		t.Errorf("write through the reader: got nil error, want one")
	}
}

// TestCheckpointer checks that writes reach the database file without
// anyone asking for a checkpoint: the writer's own threshold is far above
// what the test writes, so only the checkpointer can have copied them.
func TestCheckpointer(t *testing.T) {
	st, path := openTemp(t)
	ctx := context.Background()
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := size()
	for i := range 200 {
		s := &session.Session{ID: fmt.Sprintf("ck%04d", i), Agent: "ann", Customer: strings.Repeat("x", 150),
			State: session.Requested, CreatedAt: time.Unix(int64(1000+i), 0), TokenHash: [32]byte{byte(i), byte(i >> 8), 7}, Version: 1}
		if err := st.CreateSession(ctx, session.Change{Session: s}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for size() <= before {
		if time.Now().After(deadline) {
			t.Fatalf("database file still %d bytes 10 s after the writes; want it to grow", before)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-st.ckptDone:
	default:
		t.Error("checkpointer still running after Close")
	}
}

func TestOpenDurable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.db")
	st, err := Open(path, Options{Durable: true, BusyTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var got string
	if err := st.wconn.QueryRowContext(context.Background(), "PRAGMA synchronous").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "2" {
		t.Errorf("Durable: PRAGMA synchronous: got %q, want 2 (FULL)", got)
	}
}

func TestOpenBadPath(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"", ":memory:", "file:x.db", filepath.Join(dir, "a?b.db"), filepath.Join(dir, "missing", "x.db")} {
		if st, err := Open(p, Options{}); err == nil {
			st.Close()
			t.Errorf("Open(%q): got nil error, want one", p)
		}
	}
}

func TestCloseIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	st, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := st.Close(); err != nil {
			t.Errorf("Close #%d: %v", i+1, err)
		}
	}
	if _, err := st.GetSession(context.Background(), "x"); !errors.Is(err, ErrClosed) {
		t.Errorf("GetSession after Close: got %v, want ErrClosed", err)
	}
	if err := st.CreateUser(context.Background(), &users.User{Name: "x"}); !errors.Is(err, ErrClosed) {
		t.Errorf("CreateUser after Close: got %v, want ErrClosed", err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.db")
	ctx := context.Background()
	st, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := &session.Session{ID: "keep", Agent: "alice", State: session.Active, CreatedAt: time.Unix(1700000000, 123456789).UTC(),
		Scopes: session.Scopes{{Kind: session.Tunnel, Ports: []uint16{22}}}, TokenHash: [32]byte{1}, Version: 1}
	if err := st.CreateSession(ctx, session.Change{Session: s}); err != nil {
		t.Fatal(err)
	}
	if err := st.AppendAudit(ctx, []audit.Record{{Seq: 1, Event: audit.Event{Type: "x", Time: s.CreatedAt}}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer st.Close()
	got, err := st.GetSession(ctx, "keep")
	if err != nil {
		t.Fatalf("GetSession after reopen: %v", err)
	}
	if !got.CreatedAt.Equal(s.CreatedAt) || got.Scopes.String() != "tunnel:22" {
		t.Errorf("after reopen: got %v %q, want %v %q", got.CreatedAt, got.Scopes, s.CreatedAt, "tunnel:22")
	}
	if r, ok, err := st.LastAudit(ctx); err != nil || !ok || r.Seq != 1 {
		t.Errorf("LastAudit after reopen: got %d, %v, %v, want 1, true, nil", r.Seq, ok, err)
	}
	var n int
	if err := st.reader.QueryRow("SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != SchemaVersion() {
		t.Errorf("schema_migrations rows: got %d, want %d (each migration once)", n, SchemaVersion())
	}
	if from, to := st.Migrated(); from != SchemaVersion() || to != SchemaVersion() {
		t.Errorf("Migrated on reopen: %d to %d, want nothing applied at %d", from, to, SchemaVersion())
	}
}

// TestMigratedReported: Open says which versions it migrated from and to,
// so that serve can say a database was upgraded: a new one from 0, one
// written by the first release from 1.
func TestMigratedReported(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(filepath.Join(dir, "new.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if from, to := st.Migrated(); from != 0 || to != SchemaVersion() {
		t.Errorf("new database: migrated %d to %d, want 0 to %d", from, to, SchemaVersion())
	}

	old := filepath.Join(dir, "old.db")
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", old)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT",
		ms[0].sql,
		"INSERT INTO schema_migrations VALUES (1, '" + ms[0].name + "', 0)",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	st, err = Open(old, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if from, to := st.Migrated(); from != 1 || to != SchemaVersion() {
		t.Errorf("first release's database: migrated %d to %d, want 1 to %d", from, to, SchemaVersion())
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.db")
	st, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	future := SchemaVersion() + 1
	if _, err := st.wconn.ExecContext(context.Background(), "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future.sql', 0)", future); err != nil {
		t.Fatal(err)
	}
	st.Close()

	_, err = Open(path, Options{})
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema: got %v, want ErrSchemaTooNew", err)
	}
	for _, want := range []string{"schema version", "newer than this binary"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q: want it to mention %q", err, want)
		}
	}
}

func TestMigrationsWellFormed(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		t.Fatal("no migrations embedded")
	}
	for i, m := range ms {
		if m.version != i+1 {
			t.Errorf("migration %d: got version %d, want %d", i, m.version, i+1)
		}
	}
}

func TestOutOfRangeTime(t *testing.T) {
	st, _ := openTemp(t)
	s := &session.Session{ID: "old", CreatedAt: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), TokenHash: [32]byte{2}, Version: 1}
	if err := st.CreateSession(context.Background(), session.Change{Session: s}); err == nil || !strings.Contains(err.Error(), "created_at") {
		t.Errorf("CreateSession with year 1: got %v, want an error naming created_at", err)
	}
}

// TestCrashDurability kills a child process right after commits return and
// checks that every acknowledged write is there after reopening.
func TestCrashDurability(t *testing.T) {
	if os.Getenv("SQLITE_CRASH_CHILD") != "" {
		crashChild()
		return
	}
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "crash.db")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := newCrashCmd(exe, path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := readAcks(t, out, 300)
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no deferred Close, no checkpoint
		t.Fatal(err)
	}
	_ = cmd.Wait()

	st, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer st.Close()
	last, ok, err := st.LastAudit(context.Background())
	if err != nil || !ok {
		t.Fatalf("LastAudit: %v, %v", ok, err)
	}
	if last.Seq < acked {
		t.Errorf("after SIGKILL: last audit seq %d, want at least the acknowledged %d", last.Seq, acked)
	}
	open, err := st.OpenSessions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ended, err := st.ListSessions(context.Background(), session.Filter{State: session.Ended})
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(ended)) < acked || len(open)+len(ended) < int(acked) {
		t.Errorf("after SIGKILL: %d ended and %d open sessions, want at least %d ended", len(ended), len(open), acked)
	}
}

// TestGroupCommitIsolation runs many concurrent writes, half of which must
// fail, and checks that the failures undo only themselves.
func TestGroupCommitIsolation(t *testing.T) {
	st, _ := openTemp(t)
	ctx := context.Background()
	first := &session.Session{ID: "taken", TokenHash: [32]byte{0xff}, CreatedAt: time.Unix(1, 0), Version: 1}
	if err := st.CreateSession(ctx, session.Change{Session: first}); err != nil {
		t.Fatal(err)
	}
	const n = 200
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s := &session.Session{ID: fmt.Sprintf("g%03d", i), TokenHash: [32]byte{byte(i), 1}, CreatedAt: time.Unix(2, 0), Version: 1}
			if i%2 == 1 {
				s.ID = "taken" // duplicate: must fail alone
			}
			errs[i] = st.CreateSession(ctx, session.Change{Session: s})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if (err == nil) != (i%2 == 0) {
			t.Errorf("write %d: got error %v, want failure only for odd writes", i, err)
		}
	}
	list, err := st.ListSessions(ctx, session.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(list), n/2+1; got != want {
		t.Errorf("stored sessions: got %d, want %d", got, want)
	}
	// A cancelled context fails before anything is queued.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := st.CreateSession(cctx, session.Change{Session: &session.Session{ID: "late", TokenHash: [32]byte{9, 9}, Version: 1}}); !errors.Is(err, context.Canceled) {
		t.Errorf("CreateSession with a cancelled context: got %v, want context.Canceled", err)
	}
	if _, err := st.GetSession(ctx, "late"); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("GetSession(late): got %v, want ErrNotFound", err)
	}
}
