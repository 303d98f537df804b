// Package userstest has test doubles for the users package: an in-memory
// Store and the conformance suite every users.Store implementation runs.
package userstest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"supportgate/gateway/users"
)

// MemStore is an in-memory users.Store for tests.
type MemStore struct {
	mu     sync.Mutex // guards users and tokens
	users  map[string]*users.User
	tokens map[[32]byte]users.Token
}

var _ users.Store = (*MemStore)(nil)

// NewMemStore returns an empty store.
func NewMemStore() *MemStore {
	return &MemStore{users: map[string]*users.User{}, tokens: map[[32]byte]users.Token{}}
}

func cloneUser(u *users.User) *users.User {
	c := *u
	c.TOTPSecret = slices.Clone(u.TOTPSecret)
	return &c
}

// CreateUser implements users.Store.
func (m *MemStore) CreateUser(_ context.Context, u *users.User) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[u.Name]; ok {
		return fmt.Errorf("memstore: user %s: %w", u.Name, users.ErrExists)
	}
	c := cloneUser(u)
	c.Version = 1
	m.users[u.Name] = c
	return nil
}

// GetUser implements users.Store.
func (m *MemStore) GetUser(_ context.Context, name string) (*users.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[name]
	if !ok {
		return nil, fmt.Errorf("memstore: user %s: %w", name, users.ErrNotFound)
	}
	return cloneUser(u), nil
}

// UpdateUser implements users.Store.
func (m *MemStore) UpdateUser(_ context.Context, u *users.User) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.users[u.Name]
	if !ok {
		return fmt.Errorf("memstore: user %s: %w", u.Name, users.ErrNotFound)
	}
	if old.Version+1 != u.Version {
		return fmt.Errorf("memstore: user %s: %w", u.Name, users.ErrConflict)
	}
	m.users[u.Name] = cloneUser(u)
	return nil
}

// ListUsers implements users.Store.
func (m *MemStore) ListUsers(_ context.Context) ([]*users.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*users.User, 0, len(m.users))
	for _, u := range m.users {
		out = append(out, cloneUser(u))
	}
	slices.SortFunc(out, func(a, b *users.User) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// CountUsers implements users.Store.
func (m *MemStore) CountUsers(_ context.Context) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.users), nil
}

// CreateToken implements users.Store.
func (m *MemStore) CreateToken(_ context.Context, t users.Token) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.tokens[t.Hash]; ok {
		return fmt.Errorf("memstore: token: %w", users.ErrExists)
	}
	m.tokens[t.Hash] = t
	return nil
}

// GetToken implements users.Store.
func (m *MemStore) GetToken(_ context.Context, hash [32]byte) (users.Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[hash]
	if !ok {
		return users.Token{}, fmt.Errorf("memstore: token: %w", users.ErrNotFound)
	}
	return t, nil
}

// DeleteToken implements users.Store.
func (m *MemStore) DeleteToken(_ context.Context, hash [32]byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.tokens[hash]; !ok {
		return fmt.Errorf("memstore: token: %w", users.ErrNotFound)
	}
	delete(m.tokens, hash)
	return nil
}

// DeleteUserTokens implements users.Store.
func (m *MemStore) DeleteUserTokens(_ context.Context, user, kind string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for h, t := range m.tokens {
		if t.User == user && (kind == "" || t.Kind == kind) {
			delete(m.tokens, h)
		}
	}
	return nil
}

// DeleteExpiredTokens implements users.Store.
func (m *MemStore) DeleteExpiredTokens(_ context.Context, now time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for h, t := range m.tokens {
		if t.ExpiresAt.Before(now) {
			delete(m.tokens, h)
			n++
		}
	}
	return n, nil
}
