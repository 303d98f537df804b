package gateway_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"supportgate/gateway"
	"supportgate/gateway/identity"
	"supportgate/gateway/sqlite"
	"supportgate/gateway/users"
)

// bumpingStore, once armed, has a concurrent writer change the account
// just before the next update of it is stored, as a login or a failed
// guess landing at that moment does.
type bumpingStore struct {
	*sqlite.Store
	armed atomic.Bool
	once  sync.Once
}

func (s *bumpingStore) UpdateUser(ctx context.Context, u *users.User) error {
	if s.armed.Load() {
		var err error
		s.once.Do(func() {
			var cur *users.User
			if cur, err = s.Store.GetUser(ctx, u.Name); err == nil {
				cur.Failures++
				cur.Version++
				err = s.Store.UpdateUser(ctx, cur)
			}
		})
		if err != nil {
			return err
		}
	}
	return s.Store.UpdateUser(ctx, u)
}

// TestReenrollDuringAccountWrite: a reset that loses the version race to
// a concurrent write of the account (a failed guess, a login) still
// resets it, rather than leaving the old credentials working: whoever
// holds them could otherwise keep a reset from ever taking.
func TestReenrollDuringAccountWrite(t *testing.T) {
	var bs *bumpingStore
	e := newEnvWith(t, func(c *gateway.Config) {
		bs = &bumpingStore{Store: c.Store.(*sqlite.Store)}
		c.Store = bs
	})
	root := e.addUser("root", identity.RoleAdmin, "")
	alice := e.addUser("alice", identity.RoleAgent, "red")
	bs.armed.Store(true)
	if code, body := e.send(nil, root, "POST", "/api/v1/users/alice/reenroll", "{}"); code != http.StatusOK {
		t.Errorf("reset racing a write of the account: %d %s, want 200", code, body)
	}
	if code, body := e.send(nil, nil, "POST", "/api/v1/login", map[string]string{
		"user": "alice", "password": testPassword, "totp": alice.code(),
	}); code != http.StatusUnauthorized {
		t.Errorf("old password and phone after the reset: %d %s, want 401", code, body)
	}
}
