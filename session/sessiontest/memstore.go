package sessiontest

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"supportgate/session"
)

// MemStore is an in-memory session.Store for tests. Fail, when set, makes
// every write return it (to test storage failures). UpdateSessions refuses
// a Change whose Before is not the stored session (LastActivity aside), so
// that tests of the Broker check what it passes.
type MemStore struct {
	mu       sync.Mutex // guards the fields below
	sessions map[string]*session.Session
	Fail     error
}

var _ session.Store = (*MemStore)(nil)

// NewMemStore returns an empty store.
func NewMemStore() *MemStore { return &MemStore{sessions: map[string]*session.Session{}} }

// SetFail makes writes fail with err (nil restores them).
func (m *MemStore) SetFail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.Fail = err
}

// CreateSession implements session.Store.
func (m *MemStore) CreateSession(_ context.Context, c session.Change) error {
	s := c.Session
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return m.Fail
	}
	if _, ok := m.sessions[s.ID]; ok {
		return fmt.Errorf("memstore: duplicate session %s", s.ID)
	}
	for _, o := range m.sessions {
		if o.TokenHash == s.TokenHash {
			return fmt.Errorf("memstore: duplicate token")
		}
	}
	m.sessions[s.ID] = s.Clone()
	return nil
}

// UpdateSessions implements session.Store.
func (m *MemStore) UpdateSessions(_ context.Context, cs ...session.Change) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return m.Fail
	}
	for _, c := range cs {
		s := c.Session
		old, ok := m.sessions[s.ID]
		if !ok {
			return session.ErrNotFound
		}
		if old.Version+1 != s.Version {
			return session.ErrConflict
		}
		if c.Before != nil {
			b := c.Before.Clone()
			b.LastActivity = old.LastActivity
			if d := diff(b, old); len(d) > 0 {
				return fmt.Errorf("memstore: Change.Before of %s is not the stored session: %v", s.ID, d)
			}
		}
	}
	for _, c := range cs {
		m.sessions[c.Session.ID] = c.Session.Clone()
	}
	return nil
}

// GetSession implements session.Store.
func (m *MemStore) GetSession(_ context.Context, id string) (*session.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok {
		return nil, session.ErrNotFound
	}
	return s.Clone(), nil
}

// SessionByToken implements session.Store.
func (m *MemStore) SessionByToken(_ context.Context, h [32]byte) (*session.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.sessions {
		if s.TokenHash == h {
			return s.Clone(), nil
		}
	}
	return nil, session.ErrNotFound
}

// ListSessions implements session.Store.
func (m *MemStore) ListSessions(_ context.Context, f session.Filter) ([]*session.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*session.Session
	for _, s := range m.sessions {
		if (f.Agent != "" && s.Agent != f.Agent) || (f.Team != "" && s.Team != f.Team) ||
			(f.State != "" && s.State != f.State) || (!f.Since.IsZero() && s.CreatedAt.Before(f.Since)) ||
			(f.Approved && s.ApprovedAt.IsZero()) || (f.After != nil && !listedAfter(s, f.After)) {
			continue
		}
		out = append(out, s.Clone())
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].ID > out[j].ID
		}
		return out[i].CreatedAt.After(out[j].CreatedAt)
	})
	limit := f.Limit
	if limit <= 0 || limit > session.MaxList {
		limit = session.MaxList
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// listedAfter reports whether s comes after a in ListSessions' newest-first
// order.
func listedAfter(s, a *session.Session) bool {
	if s.CreatedAt.Equal(a.CreatedAt) {
		return s.ID < a.ID
	}
	return s.CreatedAt.Before(a.CreatedAt)
}

// OpenSessions implements session.Store.
func (m *MemStore) OpenSessions(_ context.Context) ([]*session.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*session.Session
	for _, s := range m.sessions {
		if s.State != session.Ended {
			out = append(out, s.Clone())
		}
	}
	return out, nil
}

// Changes wraps sessions as changes without events, for store tests.
func Changes(ss ...*session.Session) []session.Change {
	cs := make([]session.Change, len(ss))
	for i, s := range ss {
		cs[i] = session.Change{Session: s}
	}
	return cs
}
