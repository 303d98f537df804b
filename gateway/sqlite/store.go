// Package sqlite is the gateway's embedded store: sessions, users, tokens
// and the audit log in one SQLite file, through the pure-Go driver
// modernc.org/sqlite (no cgo).
//
// # Durability
//
// The database runs in WAL mode with synchronous=NORMAL. A commit is written
// to the WAL file before it returns, so it survives the gateway process
// being killed (SIGKILL, OOM, panic): the bytes are in the kernel and the
// next Open replays the WAL. What NORMAL gives up is fsync on every commit:
// on power loss or a kernel crash the last transactions before the most
// recent checkpoint may be lost, although the file stays consistent.
// Options.Durable selects synchronous=FULL, which fsyncs the WAL on every
// commit and so survives power loss too, at a large cost in write rate.
//
// # Concurrency
//
// SQLite allows one writer at a time. Store sends every write through one
// connection, which it holds for its lifetime with the write statements
// prepared on it, BEGIN IMMEDIATE and COMMIT included, so writers in this
// process queue in Go instead of spinning on SQLITE_BUSY and no write
// parses SQL; reads use a separate pool of read-only
// connections and, thanks to WAL, never wait for the writer. busy_timeout
// covers other processes opening the same file.
//
// # Checkpoints
//
// SQLite's own automatic checkpoint runs inside the commit that takes the
// WAL past 1000 pages: it copies pages back into the database file and
// fsyncs both files while the writer waits, which under load cost more
// than the writes themselves. Store instead checkpoints from a goroutine
// of its own on a connection of its own, shortly after writes, in PASSIVE
// mode (it never takes the write lock, so writers and readers go on). The
// writer's automatic checkpoint stays as a backstop at walBackstopPages:
// a WAL starts over from its beginning only when a write begins with
// every frame copied back, which a checkpoint running beside a busy writer
// rarely achieves, so under sustained writes the backstop is what bounds
// the WAL. Durability is unchanged: a commit is in the WAL before it
// returns either way, and a checkpoint fsyncs the WAL before it copies.
//
// # Schema
//
// Migrations are the embedded files migrations/NNNN_name.sql, applied in
// order in one transaction at Open and recorded in schema_migrations. Open
// refuses a database whose schema is newer than this binary knows
// (ErrSchemaTooNew) rather than risk writing rows an upgrade expects in
// another shape.
//
// Times are stored as INTEGER unix nanoseconds in UTC with 0 for the zero
// time, so they round trip exactly (read back in UTC); the consequence is
// that 1970-01-01T00:00:00Z itself reads back as the zero time, and times
// outside the years 1678 to 2261 are refused.
package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"supportgate/gateway/audit"
	"supportgate/gateway/users"
	"supportgate/session"
)

var (
	_ session.Store    = (*Store)(nil)
	_ users.Store      = (*Store)(nil)
	_ audit.Store      = (*Store)(nil)
	_ audit.ChainStore = (*Store)(nil)
)

// ErrSchemaTooNew is returned, wrapped, by Open for a database written by a
// newer supportgate.
var ErrSchemaTooNew = errors.New("database schema is newer than this binary supports")

// ErrClosed is returned, wrapped, by methods called after Close.
var ErrClosed = errors.New("store is closed")

// Options tune Open. The zero value is the recommended configuration.
type Options struct {
	// Durable fsyncs the WAL on every commit (synchronous=FULL) so that
	// commits also survive power loss. Without it (synchronous=NORMAL)
	// commits survive a crash or kill of the gateway process but the last
	// ones may be lost on power loss.
	Durable bool

	// BusyTimeout is how long a statement waits for a lock held by another
	// process before failing. Zero means 5 s.
	BusyTimeout time.Duration

	// MaxReaders caps the pool of read connections. Zero means
	// 2 x GOMAXPROCS, at least 4.
	MaxReaders int
}

// Store is a session.Store, users.Store and audit.Store backed by one SQLite
// file. Its methods are safe for concurrent use.
type Store struct {
	path   string
	writer *sql.DB   // one connection: every write goes through it
	wconn  *sql.Conn // that connection, held from Open to Close
	reader *sql.DB   // read-only pool

	stmts  statements
	narrow map[uint32]*sql.Stmt // narrow session updates by column mask (sessions.go); guarded by slot

	slot  chan struct{} // capacity 1: held by the caller running a group commit
	qmu   sync.Mutex    // guards queue
	queue []*writeOp    // writes waiting for the next group commit

	txs, ops  atomic.Int64 // write transactions begun, writes run in them
	lastBatch int          // writes in the last group commit; guarded by slot

	// auditHead is the newest audit record as this store wrote it, used
	// by the group-commit leader only (the writer slot guards it). It is
	// forgotten whenever a write transaction does not commit in full.
	auditHead struct {
		known bool
		ok    bool // the log is not empty
		last  audit.Record
	}

	ckpt     *sql.DB       // one connection for the checkpointer goroutine
	ckptKick chan struct{} // capacity 1: writes happened since the last checkpoint
	ckptStop chan struct{} // closed by Close
	ckptDone chan struct{} // closed when the checkpointer has returned

	schemaFrom, schemaTo int // the schema versions before and after Open's migrations

	closeOnce sync.Once
	closeErr  error
}

// Migrated returns the schema version the database had when Open found it
// and the one Open left it at: from is 0 for a new database, and equal to
// to when nothing was applied. A database migrated here is refused by
// older binaries (ErrSchemaTooNew).
func (s *Store) Migrated() (from, to int) { return s.schemaFrom, s.schemaTo }

// Checkpoint pacing: see the package comment.
const (
	// checkpointDelay is how long the checkpointer lets writes accumulate
	// after the first one since its last checkpoint: each checkpoint costs
	// two fsyncs, and pages written many times are copied back once.
	checkpointDelay = 100 * time.Millisecond
	// walBackstopPages is the writer's own automatic checkpoint threshold
	// (SQLite's default is 1000).
	walBackstopPages = 10000
)

// WriteStats returns how many write transactions the store has begun and
// how many writes (calls that change the database) ran in them: their
// ratio is the average group-commit batch.
func (s *Store) WriteStats() (transactions, writes int64) {
	return s.txs.Load(), s.ops.Load()
}

// statements are prepared once at Open. Writer statements are prepared on
// the held writer connection (wconn) and run only by the group-commit
// leader, inside the transaction it began.
type statements struct {
	begin, commit, rollback, savepoint, release, rollbackTo *sql.Stmt // writer: transaction control

	insertSession, updateSession, updateSessionFast, sessionVersion *sql.Stmt // writer
	getSession, sessionByToken                                      *sql.Stmt // reader

	insertUser, updateUser, userExists, deleteToken, insertToken *sql.Stmt // writer
	getUser, getToken                                            *sql.Stmt // reader

	insertAudit, maxSeq, lastAuditW *sql.Stmt // writer
	lastAudit                       *sql.Stmt // reader
}

// Open opens or creates the database at path (created with mode 0600),
// applies pending schema migrations and prepares the statements.
func Open(path string, opt Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: path is required")
	}
	if strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") || path == ":memory:" {
		return nil, fmt.Errorf("sqlite: path %q: must be a plain file name without '?', '#' or a file: prefix", path)
	}
	// Create the file ourselves so that it, and the -wal and -shm files
	// SQLite derives from it, are private to the gateway's user.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}

	busy := opt.BusyTimeout
	if busy <= 0 {
		busy = 5 * time.Second
	}
	syncMode := "NORMAL"
	if opt.Durable {
		syncMode = "FULL"
	}
	readers := opt.MaxReaders
	if readers <= 0 {
		readers = max(4, 2*runtime.GOMAXPROCS(0))
	}

	common := url.Values{}
	common.Add("_pragma", "busy_timeout("+strconv.FormatInt(busy.Milliseconds(), 10)+")")
	common.Add("_pragma", "foreign_keys(1)")
	common.Add("_pragma", "synchronous("+syncMode+")")

	w := cloneValues(common)
	w.Add("_pragma", "journal_mode(WAL)")
	w.Add("_pragma", "wal_autocheckpoint("+strconv.Itoa(walBackstopPages)+")")
	w.Set("_txlock", "immediate")
	writer, err := sql.Open("sqlite", path+"?"+w.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)

	s := &Store{path: path, writer: writer, slot: make(chan struct{}, 1)}
	ctx := context.Background()
	var mode string
	if err := writer.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		writer.Close()
		return nil, fmt.Errorf("sqlite: %s: journal mode is %q, want wal", path, mode)
	}
	if err := s.migrate(ctx); err != nil {
		writer.Close()
		return nil, err
	}
	if s.wconn, err = writer.Conn(ctx); err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}

	r := cloneValues(common)
	r.Add("_pragma", "query_only(1)")
	reader, err := sql.Open("sqlite", path+"?"+r.Encode())
	if err != nil {
		s.wconn.Close()
		writer.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	reader.SetMaxOpenConns(readers)
	reader.SetMaxIdleConns(readers)
	reader.SetConnMaxIdleTime(5 * time.Minute)
	s.reader = reader

	ckpt, err := sql.Open("sqlite", path+"?"+cloneValues(common).Encode())
	if err != nil {
		reader.Close()
		s.wconn.Close()
		writer.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	ckpt.SetMaxOpenConns(1)
	ckpt.SetMaxIdleConns(1)
	ckpt.SetConnMaxLifetime(0)
	ckpt.SetConnMaxIdleTime(0)
	s.ckpt = ckpt
	s.ckptKick = make(chan struct{}, 1)
	s.ckptStop = make(chan struct{})
	s.ckptDone = make(chan struct{})
	go s.checkpointer()

	if err := s.prepare(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: %s: preparing statements: %w", path, err)
	}
	return s, nil
}

// checkpointer copies the WAL back into the database file after writes,
// at most once per checkpointDelay, until Close. Its failures (another
// process checkpointing at the same time, say) are left to the next round
// and to the writer's backstop.
func (s *Store) checkpointer() {
	defer close(s.ckptDone)
	for {
		select {
		case <-s.ckptStop:
			return
		case <-s.ckptKick:
		}
		select {
		case <-s.ckptStop:
			return
		case <-time.After(checkpointDelay):
		}
		_, _ = s.ckpt.Exec("PRAGMA wal_checkpoint(PASSIVE)")
	}
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// Close closes the database. It is idempotent; later calls return the
// first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.ckpt != nil {
			close(s.ckptStop)
			<-s.ckptDone
			errs = append(errs, s.ckpt.Close())
		}
		// Let SQLite refresh its planner statistics; harmless if it fails.
		_, _ = s.wconn.ExecContext(context.Background(), "PRAGMA optimize")
		if s.reader != nil {
			errs = append(errs, s.reader.Close())
		}
		s.stmts.closeWriter()
		for _, st := range s.narrow {
			st.Close()
		}
		errs = append(errs, s.wconn.Close(), s.writer.Close())
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("sqlite: closing %s: %w", s.path, err)
		}
	})
	return s.closeErr
}

//go:embed migrations/*.sql
var migrationFS embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in order, checking that they
// are numbered 1, 2, 3... without gaps.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %q: name must be NNNN_name.sql", e.Name())
		}
		b, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %q: got version %d, want %d", m.name, m.version, i+1)
		}
	}
	return out, nil
}

// SchemaVersion is the schema version this binary writes.
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil {
		return 0
	}
	return len(ms)
}

func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: %s: migrating: %w", s.path, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("sqlite: %s: creating schema_migrations: %w", s.path, err)
	}
	var cur int
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&cur); err != nil {
		return fmt.Errorf("sqlite: %s: reading schema version: %w", s.path, err)
	}
	if cur > len(ms) {
		return fmt.Errorf("sqlite: %s: schema version %d, this binary knows up to %d: %w", s.path, cur, len(ms), ErrSchemaTooNew)
	}
	s.schemaFrom, s.schemaTo = cur, len(ms)
	for _, m := range ms[cur:] {
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("sqlite: %s: applying migration %s: %w", s.path, m.name, err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
			m.version, m.name, time.Now().UnixNano()); err != nil {
			return fmt.Errorf("sqlite: %s: recording migration %s: %w", s.path, m.name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: %s: committing migrations: %w", s.path, err)
	}
	return nil
}

func (s *Store) prepare(ctx context.Context) error {
	type preparer interface {
		PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
	}
	type prep struct {
		db   preparer
		dst  **sql.Stmt
		text string
	}
	st := &s.stmts
	w := s.wconn
	for _, p := range []prep{
		{w, &st.begin, "BEGIN IMMEDIATE"},
		{w, &st.commit, "COMMIT"},
		{w, &st.rollback, "ROLLBACK"},
		{w, &st.savepoint, "SAVEPOINT op"},
		{w, &st.release, "RELEASE op"},
		{w, &st.rollbackTo, "ROLLBACK TO op"},

		{w, &st.insertSession, insertSessionSQL},
		{w, &st.updateSession, updateSessionSQL},
		{w, &st.updateSessionFast, updateSessionFastSQL},
		{w, &st.sessionVersion, "SELECT version FROM sessions WHERE id = ?"},
		{s.reader, &st.getSession, "SELECT " + sessionCols + " FROM sessions WHERE id = ?"},
		{s.reader, &st.sessionByToken, "SELECT " + sessionCols + " FROM sessions WHERE token_hash = ?"},

		{w, &st.insertUser, insertUserSQL},
		{w, &st.updateUser, updateUserSQL},
		{w, &st.userExists, "SELECT 1 FROM users WHERE name = ?"},
		{w, &st.insertToken, "INSERT INTO tokens (hash, user, kind, created_at, expires_at) VALUES (?, ?, ?, ?, ?)"},
		{w, &st.deleteToken, "DELETE FROM tokens WHERE hash = ?"},
		{s.reader, &st.getUser, "SELECT " + userCols + " FROM users WHERE name = ?"},
		{s.reader, &st.getToken, "SELECT hash, user, kind, created_at, expires_at FROM tokens WHERE hash = ?"},

		{w, &st.insertAudit, insertAuditSQL},
		{w, &st.maxSeq, "SELECT COALESCE(MAX(seq), 0) FROM audit_records"},
		{w, &st.lastAuditW, "SELECT " + auditCols + " FROM audit_records ORDER BY seq DESC LIMIT 1"},
		{s.reader, &st.lastAudit, "SELECT " + auditCols + " FROM audit_records ORDER BY seq DESC LIMIT 1"},
	} {
		stmt, err := p.db.PrepareContext(ctx, p.text)
		if err != nil {
			return fmt.Errorf("%q: %w", p.text, err)
		}
		*p.dst = stmt
	}
	return nil
}

// closeWriter closes the statements prepared on the writer connection, so
// that it can be closed.
func (st *statements) closeWriter() {
	for _, stmt := range []*sql.Stmt{st.begin, st.commit, st.rollback, st.savepoint, st.release, st.rollbackTo,
		st.insertSession, st.updateSession, st.updateSessionFast, st.sessionVersion,
		st.insertUser, st.updateUser, st.userExists, st.deleteToken, st.insertToken,
		st.insertAudit, st.maxSeq, st.lastAuditW} {
		if stmt != nil {
			stmt.Close()
		}
	}
}

// A writeOp is one caller's write, waiting to run in a group transaction.
type writeOp struct {
	ctx  context.Context
	fn   func(tx *wtx) error
	done chan error // buffered; receives exactly one result
}

// wtx is the write transaction a write's fn runs in: the writer
// connection, inside the transaction the group-commit leader began, and
// the caller's context detached from its cancellation. fn runs statements
// through it only.
type wtx struct {
	ctx  context.Context
	conn *sql.Conn
}

// exec runs a prepared writer statement.
func (t *wtx) exec(st *sql.Stmt, args ...any) (sql.Result, error) {
	return st.ExecContext(t.ctx, args...)
}

// queryRow runs a prepared writer query.
func (t *wtx) queryRow(st *sql.Stmt, args ...any) *sql.Row {
	return st.QueryRowContext(t.ctx, args...)
}

// execSQL runs a statement that is not prepared.
func (t *wtx) execSQL(query string, args ...any) (sql.Result, error) {
	return t.conn.ExecContext(t.ctx, query, args...)
}

// write runs fn in a write transaction and commits if fn returns nil.
//
// Writes are group-committed: callers queue their fn, and whichever caller
// gets the single writer slot runs everything queued so far in one
// transaction (BEGIN IMMEDIATE on the one writer connection), each fn under
// its own SAVEPOINT so that a failing fn undoes only its own changes, then
// commits once and hands every caller its result. Under load this turns N
// commits, each writing its pages to the WAL, into one. When the last
// group had more than one write, the leader yields the processor once
// before taking the queue, so that writers already running join it: every
// page a transaction touches (a hot index page, the audit table's last
// page) is written to the WAL once per commit, so fewer, larger commits
// write fewer pages per session. No goroutine is started: the leader is
// always a caller, and it delivers every result before giving up the slot.
//
// fn runs with ctx detached from cancellation (tx.ctx): interrupting a
// statement inside a transaction would roll back the whole group. A
// caller whose ctx is done before its fn starts gets ctx.Err() and its fn
// does not run; once queued, a caller always waits for the real outcome,
// so an error never hides a committed write.
func (s *Store) write(ctx context.Context, fn func(tx *wtx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	op := &writeOp{ctx: ctx, fn: fn, done: make(chan error, 1)}
	s.qmu.Lock()
	s.queue = append(s.queue, op)
	s.qmu.Unlock()
	select {
	case err := <-op.done:
		return err
	case s.slot <- struct{}{}:
	}
	// Leader. Our op was queued before we took the slot, so it is either in
	// this batch or was finished by the previous leader, which delivered
	// its results before releasing the slot.
	if s.lastBatch > 1 {
		// Writers are arriving together: let the ones already running
		// reach the queue, so that they share this commit.
		runtime.Gosched()
	}
	s.qmu.Lock()
	batch := s.queue
	s.queue = nil
	s.qmu.Unlock()
	if len(batch) > 0 {
		s.runBatch(batch)
		s.lastBatch = len(batch)
	}
	<-s.slot
	return <-op.done
}

// runBatch runs ops in one transaction and delivers each op's result.
func (s *Store) runBatch(ops []*writeOp) {
	s.txs.Add(1)
	s.ops.Add(int64(len(ops)))
	errs := make([]error, len(ops))
	bg := context.Background()
	st := &s.stmts
	if _, err := st.begin.ExecContext(bg); err != nil {
		s.auditHead.known = false
		for _, op := range ops {
			op.done <- closedErr(err)
		}
		return
	}
	rollback := func() { _, _ = st.rollback.ExecContext(bg) }
	single := len(ops) == 1
	for i, op := range ops {
		if err := op.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		tx := &wtx{ctx: context.WithoutCancel(op.ctx), conn: s.wconn}
		if single {
			errs[i] = op.fn(tx)
			continue
		}
		if _, err := st.savepoint.ExecContext(bg); err != nil {
			errs[i] = err
			continue
		}
		errs[i] = op.fn(tx)
		if errs[i] != nil {
			s.auditHead.known = false
			if _, err := st.rollbackTo.ExecContext(bg); err != nil {
				// The transaction is in an unknown state: fail everyone.
				rollback()
				for j, op := range ops {
					op.done <- cmp.Or(errs[j], fmt.Errorf("rolling back a failed write: %w", err))
				}
				return
			}
		}
		if _, err := st.release.ExecContext(bg); err != nil && errs[i] == nil {
			s.auditHead.known = false
			errs[i] = err
		}
	}
	if single && errs[0] != nil {
		s.auditHead.known = false
		rollback()
		ops[0].done <- errs[0]
		return
	}
	if _, err := st.commit.ExecContext(bg); err != nil {
		// A COMMIT that fails may leave the transaction open (SQLITE_BUSY)
		// or have rolled it back already; either way, end it.
		rollback()
		s.auditHead.known = false
		for i := range errs {
			if errs[i] == nil {
				errs[i] = closedErr(err)
			}
		}
	}
	select {
	case s.ckptKick <- struct{}{}:
	default:
	}
	for i, op := range ops {
		op.done <- errs[i]
	}
}

// closedErr turns database/sql's errors for a closed database, writer
// connection or statement into ErrClosed.
func closedErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrConnDone) {
		return ErrClosed
	}
	if msg := err.Error(); strings.Contains(msg, "sql: database is closed") || strings.Contains(msg, "sql: statement is closed") {
		return ErrClosed
	}
	return err
}

// isConstraint reports whether err is a SQLite constraint violation
// (UNIQUE, PRIMARY KEY and the like).
func isConstraint(err error) bool {
	if err == nil {
		return false // and no allocation for errors.As's target
	}
	var e *msqlite.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_CONSTRAINT
}

// Time encoding: unix nanoseconds, 0 for the zero time.

var (
	minTime = time.Unix(0, -1<<63+1)
	maxTime = time.Unix(0, 1<<63-1)
)

// encoder converts values for binding and keeps the first error.
type encoder struct{ err error }

func (e *encoder) time(field string, t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	if t.Before(minTime) || t.After(maxTime) {
		if e.err == nil {
			e.err = fmt.Errorf("%s %s is outside the storable range", field, t.Format(time.RFC3339))
		}
		return 0
	}
	return t.UnixNano()
}

func (e *encoder) scopes(field string, sc session.Scopes) string {
	if len(sc) == 0 {
		return ""
	}
	text := sc.String()
	back, err := session.ParseScopes(text)
	if err != nil || back.String() != text {
		if e.err == nil {
			e.err = fmt.Errorf("%s %q would not read back as written", field, text)
		}
	}
	return text
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// filterNanos converts a filter bound, clamping times outside the storable
// range.
func filterNanos(t time.Time) int64 {
	switch {
	case t.Before(minTime):
		return -1 << 63
	case t.After(maxTime):
		return 1<<63 - 1
	}
	return t.UnixNano()
}

func hash32(field string, b []byte) ([32]byte, error) {
	var h [32]byte
	if len(b) != len(h) {
		return h, fmt.Errorf("%s is %d bytes, want %d", field, len(b), len(h))
	}
	copy(h[:], b)
	return h, nil
}

func short(id string) string {
	if len(id) > 64 {
		return id[:64] + "..."
	}
	return id
}
