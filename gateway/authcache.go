package gateway

import (
	"context"
	"sync"
	"time"

	"supportgate/gateway/users"
)

// authCacheTTL is how long a resolved API token is trusted without reading
// the store again. Writes through the gateway's store drop the cache at
// once (see authCache.watch), so the TTL only bounds how late a change
// made by another process on the same database is noticed.
const authCacheTTL = 3 * time.Second

// authCacheMax bounds the cache; past it, the cache starts over.
const authCacheMax = 10_000

// authCache remembers, for authCacheTTL, the principal an API token
// resolved to, so that a busy client costs no store reads per request.
// Only successful resolutions are cached. Every write to users or tokens
// through the gateway's store (logout, lock, unlock, role change, login)
// empties it before the write's caller goes on, and a resolution that
// raced with such a write is not cached, so revocation stays immediate.
type authCache struct {
	mu      sync.Mutex // guards the fields below
	gen     uint64     // bumped by every invalidation
	entries map[[32]byte]authEntry
}

type authEntry struct {
	p       principal
	fetched time.Time
}

// generation returns the current generation, to pass to put.
func (c *authCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// get returns a copy of the cached principal of the token hash h, if it was
// resolved less than authCacheTTL before now and the token has not expired.
func (c *authCache) get(h [32]byte, now time.Time) (*principal, bool) {
	c.mu.Lock()
	e, ok := c.entries[h]
	c.mu.Unlock()
	if !ok || now.Sub(e.fetched) >= authCacheTTL || now.Before(e.fetched) || !now.Before(e.p.token.ExpiresAt) {
		return nil, false
	}
	p := e.p
	u := *p.user
	p.user = &u
	return &p, true
}

// put caches p, resolved at now, unless an invalidation happened since gen
// was read (the resolution may then predate the write).
func (c *authCache) put(gen uint64, p *principal, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.entries == nil || len(c.entries) >= authCacheMax {
		c.entries = make(map[[32]byte]authEntry)
	}
	cp := *p
	u := *p.user
	cp.user = &u
	c.entries[p.token.Hash] = authEntry{p: cp, fetched: now}
}

// invalidate forgets every cached principal.
func (c *authCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.entries = nil
}

// watch returns st with its user and token writes invalidating c.
func (c *authCache) watch(st Store) Store {
	return &authWatchedStore{Store: st, c: c}
}

// authWatchedStore drops the auth cache around every write that can change
// what a token resolves to.
type authWatchedStore struct {
	Store
	c *authCache
}

func (s *authWatchedStore) UpdateUser(ctx context.Context, u *users.User) error {
	defer s.c.invalidate()
	return s.Store.UpdateUser(ctx, u)
}

func (s *authWatchedStore) DeleteToken(ctx context.Context, hash [32]byte) error {
	defer s.c.invalidate()
	return s.Store.DeleteToken(ctx, hash)
}

func (s *authWatchedStore) DeleteUserTokens(ctx context.Context, user, kind string) error {
	defer s.c.invalidate()
	return s.Store.DeleteUserTokens(ctx, user, kind)
}
