package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"supportgate/gateway/audit"
)

const auditCols = `seq, time, type, actor, role, session, remote, detail, prev, hash, sig`

const insertAuditSQL = `INSERT INTO audit_records (` + auditCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// scanChunk is how many audit records ScanAudit reads per read
// transaction; fn runs outside of it, so a slow consumer does not pin the
// WAL.
const scanChunk = 512

// AppendAudit implements audit.Store. The check of the last Seq and the
// inserts run in one write transaction, so of concurrent writers for the
// same Seq (in this process or another) exactly one wins.
func (s *Store) AppendAudit(ctx context.Context, recs []audit.Record) error {
	if len(recs) == 0 {
		return nil
	}
	first := recs[0].Seq
	for i, r := range recs {
		if r.Seq != first+uint64(i) {
			return fmt.Errorf("sqlite: appending audit record %d: batch is not contiguous at index %d: %w", r.Seq, i, audit.ErrNotContiguous)
		}
	}
	if first == 0 || recs[len(recs)-1].Seq > math.MaxInt64 {
		return fmt.Errorf("sqlite: appending audit record %d: seq out of range: %w", first, audit.ErrNotContiguous)
	}
	all := make([][]any, len(recs))
	for i, r := range recs {
		args, err := auditArgs(r)
		if err != nil {
			return err
		}
		all[i] = args
	}
	return s.write(ctx, func(tx *wtx) error {
		var last int64
		if err := tx.queryRow(s.stmts.maxSeq).Scan(&last); err != nil {
			return fmt.Errorf("sqlite: appending audit record %d: %w", first, err)
		}
		if uint64(last)+1 != first {
			return fmt.Errorf("sqlite: appending audit record %d after %d: %w", first, last, audit.ErrNotContiguous)
		}
		s.auditHead.known = false
		for i, args := range all {
			if _, err := tx.exec(s.stmts.insertAudit, args...); err != nil {
				if isConstraint(err) {
					err = fmt.Errorf("%w: %w", audit.ErrNotContiguous, err)
				}
				return fmt.Errorf("sqlite: appending audit record %d: %w", recs[i].Seq, err)
			}
		}
		return nil
	})
}

// auditArgs returns the values of auditCols for r.
func auditArgs(r audit.Record) ([]any, error) {
	var e encoder
	detail := ""
	if len(r.Detail) > 0 {
		detail = string(audit.AppendDetailJSON(nil, r.Detail))
	}
	if r.Seq == 0 || r.Seq > math.MaxInt64 {
		return nil, fmt.Errorf("sqlite: appending audit record %d: seq out of range: %w", r.Seq, audit.ErrNotContiguous)
	}
	args := []any{int64(r.Seq), e.time("time", r.Time), r.Type, r.Actor, r.Role, r.Session, r.Remote,
		detail, r.Prev, r.Hash, r.Sig}
	if e.err != nil {
		return nil, fmt.Errorf("sqlite: appending audit record %d: %w", r.Seq, e.err)
	}
	return args, nil
}

// AppendChained implements audit.ChainStore.
func (s *Store) AppendChained(ctx context.Context, chain audit.ChainFunc) error {
	return s.write(ctx, func(tx *wtx) error {
		return s.appendChainedTx(tx, chain)
	})
}

// appendChainedTx chains and inserts the records chain returns inside tx,
// which holds the database's write lock. The head they chain onto is the
// one this store last wrote (auditHead) when it knows it, and otherwise
// read in tx. A head cached here is only stale if another process appended
// since; the insert of a Seq that process already stored then fails on the
// primary key, and the records are chained again onto the head read in tx.
// So no writer in any process can put a record anywhere but right after
// the stored head. A nil chain stores nothing.
func (s *Store) appendChainedTx(tx *wtx, chain audit.ChainFunc) error {
	if chain == nil {
		return nil
	}
	h := &s.auditHead
	for attempt := 0; ; attempt++ {
		if !h.known {
			last, err := scanAudit(tx.queryRow(s.stmts.lastAuditW))
			switch {
			case errors.Is(err, sql.ErrNoRows):
				h.last, h.ok = audit.Record{}, false
			case err != nil:
				return fmt.Errorf("sqlite: reading the audit head: %w", err)
			default:
				h.last, h.ok = last, true
			}
			h.known = true
		}
		recs, err := chain(h.last, h.ok)
		if err != nil {
			return err
		}
		err = s.insertChained(tx, h.last.Seq, recs)
		if isConstraint(err) && attempt == 0 {
			h.known = false // another process appended: chain again
			continue
		}
		if err != nil {
			return err
		}
		if len(recs) > 0 {
			h.last, h.ok = recs[len(recs)-1], true
		}
		return nil
	}
}

// insertChained inserts recs, which must follow Seq after.
func (s *Store) insertChained(tx *wtx, after uint64, recs []audit.Record) error {
	for i, r := range recs {
		if r.Seq != after+1+uint64(i) {
			return fmt.Errorf("sqlite: appending audit record %d after %d: %w", r.Seq, after+uint64(i), audit.ErrNotContiguous)
		}
		args, err := auditArgs(r)
		if err != nil {
			return err
		}
		if _, err := tx.exec(s.stmts.insertAudit, args...); err != nil {
			if isConstraint(err) && i == 0 {
				return err
			}
			return fmt.Errorf("sqlite: appending audit record %d: %w", r.Seq, err)
		}
	}
	return nil
}

// LastAudit implements audit.Store.
func (s *Store) LastAudit(ctx context.Context) (audit.Record, bool, error) {
	r, err := scanAudit(s.stmts.lastAudit.QueryRowContext(ctx))
	if errors.Is(err, sql.ErrNoRows) {
		return audit.Record{}, false, nil
	}
	if err != nil {
		return audit.Record{}, false, fmt.Errorf("sqlite: last audit record: %w", closedErr(err))
	}
	return r, true, nil
}

// ScanAudit implements audit.Store. It reads in chunks of scanChunk
// records and calls fn outside any database transaction, so fn may use the
// store.
func (s *Store) ScanAudit(ctx context.Context, from uint64, fn func(audit.Record) error) error {
	if from == 0 {
		from = 1
	}
	for from <= math.MaxInt64 {
		chunk, err := s.auditChunk(ctx, from)
		if err != nil {
			return fmt.Errorf("sqlite: scanning audit records from %d: %w", from, err)
		}
		for _, r := range chunk {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(chunk) < scanChunk {
			return nil
		}
		from = chunk[len(chunk)-1].Seq + 1
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("sqlite: scanning audit records: %w", err)
		}
	}
	return nil
}

// ScanSessionAudit calls fn for each audit record of session (its Session
// field) with Seq >= from, in Seq order, like ScanAudit; it reads through
// an index of the records by session, so the cost follows the session's
// records, not the log's. An empty session matches nothing.
func (s *Store) ScanSessionAudit(ctx context.Context, session string, from uint64, fn func(audit.Record) error) error {
	if session == "" {
		return nil
	}
	if from == 0 {
		from = 1
	}
	for from <= math.MaxInt64 {
		chunk, err := s.queryAudit(ctx,
			"SELECT "+auditCols+" FROM audit_records WHERE session = ? AND session <> '' AND seq >= ? ORDER BY seq LIMIT ?",
			session, int64(from), scanChunk)
		if err != nil {
			return fmt.Errorf("sqlite: scanning audit records of session %s: %w", short(session), err)
		}
		for _, r := range chunk {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(chunk) < scanChunk {
			return nil
		}
		from = chunk[len(chunk)-1].Seq + 1
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("sqlite: scanning audit records of session %s: %w", short(session), err)
		}
	}
	return nil
}

func (s *Store) auditChunk(ctx context.Context, from uint64) ([]audit.Record, error) {
	return s.queryAudit(ctx, "SELECT "+auditCols+" FROM audit_records WHERE seq >= ? ORDER BY seq LIMIT ?", int64(from), scanChunk)
}

func (s *Store) queryAudit(ctx context.Context, q string, args ...any) ([]audit.Record, error) {
	rows, err := s.reader.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, closedErr(err)
	}
	defer rows.Close()
	var out []audit.Record
	for rows.Next() {
		r, err := scanAudit(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func scanAudit(sc scanner) (audit.Record, error) {
	var (
		r          audit.Record
		seq, t     int64
		detailJSON string
	)
	err := sc.Scan(&seq, &t, &r.Type, &r.Actor, &r.Role, &r.Session, &r.Remote, &detailJSON, &r.Prev, &r.Hash, &r.Sig)
	if err != nil {
		return audit.Record{}, err
	}
	r.Seq, r.Time = uint64(seq), fromNanos(t)
	if detailJSON != "" {
		if err := json.Unmarshal([]byte(detailJSON), &r.Detail); err != nil {
			return audit.Record{}, fmt.Errorf("audit record %d: detail: %w", seq, err)
		}
	}
	return r, nil
}
