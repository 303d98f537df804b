package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"supportgate/gateway/audit"
)

var _ audit.Store = (*ReadOnly)(nil)

// ErrReadOnly is returned, wrapped, by the writes of a ReadOnly.
var ErrReadOnly = errors.New("database is open read-only")

// ReadOnly reads the audit log of a database that a Store wrote, and
// writes nothing: see OpenReadOnly. Its methods are safe for concurrent
// use.
type ReadOnly struct {
	// s has only path and reader set; ReadOnly calls only the Store
	// methods that use nothing else.
	s *Store

	closeOnce sync.Once
	closeErr  error
}

// OpenReadOnly opens the existing database at path for reading: it creates
// no file and changes none, runs no migration, and needs no write access
// to the file or its directory, so it can read a copy, a snapshot on a
// read-only file system, or the database of a running gateway. A missing
// file is an error wrapping fs.ErrNotExist; a schema newer than this
// binary's, ErrSchemaTooNew; a file that holds no schema is refused too.
//
// While a Store has the database open, or after one was killed, its WAL
// file exists and is read through SQLite's shared memory (the -shm file).
// Without a WAL file the database is opened immutable, with no locks and
// no -wal or -shm file, so it must not be written while the ReadOnly is
// open. Of opt, BusyTimeout and MaxReaders apply.
func OpenReadOnly(path string, opt Options) (*ReadOnly, error) {
	if path == "" {
		return nil, errors.New("sqlite: path is required")
	}
	if strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") || path == ":memory:" {
		return nil, fmt.Errorf("sqlite: path %q: must be a plain file name without '?', '#' or a file: prefix", path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("sqlite: %s is not a regular file", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	busy := opt.BusyTimeout
	if busy <= 0 {
		busy = 5 * time.Second
	}
	readers := opt.MaxReaders
	if readers <= 0 {
		readers = max(4, 2*runtime.GOMAXPROCS(0))
	}

	// mode=ro takes effect only in a file: URI; SQLite decodes the path's
	// %-escapes and ignores the driver's _pragma keys.
	q := url.Values{}
	q.Set("mode", "ro")
	if _, err := os.Lstat(path + "-wal"); errors.Is(err, fs.ErrNotExist) {
		// A read-only connection would create the -wal and -shm files, or
		// fail where it cannot; without a WAL every commit is in the file.
		q.Set("immutable", "1")
	} else if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(busy.Milliseconds(), 10)+")")
	q.Add("_pragma", "query_only(1)")
	dsn := (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	db.SetMaxOpenConns(readers)
	db.SetMaxIdleConns(readers)
	db.SetConnMaxIdleTime(5 * time.Minute)

	if err := checkSchema(context.Background(), db, path); err != nil {
		db.Close()
		return nil, err
	}
	return &ReadOnly{s: &Store{path: path, reader: db}}, nil
}

// checkSchema refuses a database without a schema or with one newer than
// this binary knows; an older one is read as it is.
func checkSchema(ctx context.Context, db *sql.DB, path string) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	var tables int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'").Scan(&tables); err != nil {
		return fmt.Errorf("sqlite: %s: %w", path, err)
	}
	var cur int
	if tables == 1 {
		if err := db.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&cur); err != nil {
			return fmt.Errorf("sqlite: %s: reading schema version: %w", path, err)
		}
	}
	if cur == 0 {
		return fmt.Errorf("sqlite: %s: not a supportgate database (no schema)", path)
	}
	if cur > len(ms) {
		return fmt.Errorf("sqlite: %s: schema version %d, this binary knows up to %d: %w", path, cur, len(ms), ErrSchemaTooNew)
	}
	return nil
}

// LastAudit implements audit.Store.
func (r *ReadOnly) LastAudit(ctx context.Context) (audit.Record, bool, error) {
	recs, err := r.s.queryAudit(ctx, "SELECT "+auditCols+" FROM audit_records ORDER BY seq DESC LIMIT 1")
	if err != nil {
		return audit.Record{}, false, fmt.Errorf("sqlite: last audit record: %w", err)
	}
	if len(recs) == 0 {
		return audit.Record{}, false, nil
	}
	return recs[0], true, nil
}

// ScanAudit implements audit.Store, as Store.ScanAudit does.
func (r *ReadOnly) ScanAudit(ctx context.Context, from uint64, fn func(audit.Record) error) error {
	return r.s.ScanAudit(ctx, from, fn)
}

// AppendAudit implements audit.Store: it stores nothing and returns an
// error wrapping ErrReadOnly.
func (r *ReadOnly) AppendAudit(ctx context.Context, recs []audit.Record) error {
	return fmt.Errorf("sqlite: %s: appending audit records: %w", r.s.path, ErrReadOnly)
}

// Close closes the database. It is idempotent; later calls return the
// first call's result.
func (r *ReadOnly) Close() error {
	r.closeOnce.Do(func() {
		if err := r.s.reader.Close(); err != nil {
			r.closeErr = fmt.Errorf("sqlite: closing %s: %w", r.s.path, err)
		}
	})
	return r.closeErr
}
