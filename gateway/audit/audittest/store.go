// Package audittest provides an in-memory audit.Store for tests and
// RunStoreTests, the conformance suite every audit.Store implementation runs.
package audittest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"supportgate/gateway/audit"
)

// Store is a thread-safe in-memory audit.Store. Besides the Store methods it
// lets tests inspect and tamper with the records and inject failures.
type Store struct {
	mu       sync.Mutex
	recs     []audit.Record // guarded by mu; in Seq order unless Tamper says otherwise
	failNext error          // guarded by mu; returned by the next AppendAudit
}

var _ audit.Store = (*Store)(nil)

// NewStore returns an empty Store.
func NewStore() *Store { return &Store{} }

func clone(r audit.Record) audit.Record {
	r.Detail = maps.Clone(r.Detail)
	return r
}

// AppendAudit implements audit.Store.
func (s *Store) AppendAudit(ctx context.Context, recs []audit.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failNext; err != nil {
		s.failNext = nil
		return err
	}
	next := uint64(1)
	if n := len(s.recs); n > 0 {
		next = s.recs[n-1].Seq + 1
	}
	for i, r := range recs {
		if want := next + uint64(i); r.Seq != want {
			return fmt.Errorf("audittest: append seq %d, want %d: %w", r.Seq, want, audit.ErrNotContiguous)
		}
	}
	for _, r := range recs {
		s.recs = append(s.recs, clone(r))
	}
	return nil
}

// LastAudit implements audit.Store.
func (s *Store) LastAudit(ctx context.Context) (audit.Record, bool, error) {
	if err := ctx.Err(); err != nil {
		return audit.Record{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.recs) == 0 {
		return audit.Record{}, false, nil
	}
	return clone(s.recs[len(s.recs)-1]), true, nil
}

// ScanAudit implements audit.Store. It calls fn without holding the lock,
// over a snapshot, starting at the first stored record with Seq >= from and
// continuing in stored order (which Tamper may have disturbed).
func (s *Store) ScanAudit(ctx context.Context, from uint64, fn func(audit.Record) error) error {
	s.mu.Lock()
	recs := slices.Clone(s.recs)
	s.mu.Unlock()
	start := slices.IndexFunc(recs, func(r audit.Record) bool { return r.Seq >= from })
	if start < 0 {
		return nil
	}
	for _, r := range recs[start:] {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(clone(r)); err != nil {
			return err
		}
	}
	return nil
}

// Records returns a copy of the stored records, in stored order.
func (s *Store) Records() []audit.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]audit.Record, len(s.recs))
	for i, r := range s.recs {
		out[i] = clone(r)
	}
	return out
}

// Tamper replaces the stored records with fn's result, as an attacker with
// write access to the database could. fn receives a copy.
func (s *Store) Tamper(fn func([]audit.Record) []audit.Record) {
	recs := fn(s.Records())
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = recs
}

// FailNext makes the next AppendAudit return err without storing anything.
func (s *Store) FailNext(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = err
}
