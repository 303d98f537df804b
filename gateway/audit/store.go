package audit

import (
	"context"
	"errors"
)

// ErrNotContiguous is returned, wrapped, by a Store's AppendAudit when the
// first record's Seq is not the stored last Seq + 1 (1 for an empty store) or
// the batch itself is not contiguous.
var ErrNotContiguous = errors.New("audit: seq is not contiguous")

// Store persists audit records. Implementations live with the database code
// (SQLite, PostgreSQL); audittest.NewStore is an in-memory one, and
// audittest.RunStoreTests checks any implementation against this contract.
//
// A Store must give back every field of a Record exactly as appended (times
// at least to the microsecond, Detail with the same keys and values; a nil
// and an empty Detail are equivalent) and must be safe for concurrent use.
type Store interface {
	// AppendAudit stores recs atomically: all of them or none. recs[0].Seq
	// must be the last stored Seq + 1 (1 when empty) and the batch must be
	// contiguous; otherwise it stores nothing and returns an error wrapping
	// ErrNotContiguous. This makes concurrent writers (several gateways on
	// one database) safe: exactly one of them wins each Seq. An empty batch
	// is a no-op.
	AppendAudit(ctx context.Context, recs []Record) error

	// LastAudit returns the record with the highest Seq, or false if the
	// store holds none.
	LastAudit(ctx context.Context) (Record, bool, error)

	// ScanAudit calls fn for each record with Seq >= from, in Seq order. A
	// from of 0 means 1. If fn returns an error, the scan stops and
	// ScanAudit returns that error unchanged (or wrapped).
	ScanAudit(ctx context.Context, from uint64, fn func(Record) error) error
}

// ChainFunc returns the records to store after last, the newest stored
// record (ok is false when the store holds none). A ChainStore calls it
// inside its write transaction; see Log.Chain.
type ChainFunc func(last Record, ok bool) ([]Record, error)

// ChainStore is a Store that chains records inside its own write
// transactions. Because the head cannot move between reading it and
// storing the records, writers in several processes never collide, and a
// store can commit audit records in the same transaction as the change
// they report.
type ChainStore interface {
	Store
	// AppendChained reads the newest record, calls chain with it and
	// stores the records chain returns, all in one write transaction. If
	// chain returns an error, nothing is stored and AppendChained returns
	// it (wrapped). The records must be contiguous after last, as for
	// AppendAudit.
	AppendChained(ctx context.Context, chain ChainFunc) error
}
