package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"supportgate/gateway"
	"supportgate/gateway/identity"
	"supportgate/gateway/sqlite"
	"supportgate/gateway/users"
)

// loginGatedStore holds the storing of the next API token, once armed:
// a login that checked the password and code is on its way to the store.
type loginGatedStore struct {
	*sqlite.Store
	armed   chan struct{} // closed to arm
	once    sync.Once
	reached chan struct{} // closed when a token waits
	release chan struct{}
}

func (s *loginGatedStore) CreateToken(ctx context.Context, t users.Token) error {
	select {
	case <-s.armed:
		if t.Kind == users.KindAPI {
			held := false
			s.once.Do(func() { held = true })
			if held {
				close(s.reached)
				<-s.release
			}
		}
	default:
	}
	return s.Store.CreateToken(ctx, t)
}

// loginDuring has alice, an agent, sign in with her password and code
// and, while the login waits between its checks and the storing of its
// token, has root, an admin, act on her account. It returns the login's
// status and token (empty if none), with the environment and root for
// what the test checks next.
func loginDuring(t *testing.T, act func(e *env, root *testUser)) (int, string, *env, *testUser) {
	t.Helper()
	var gs *loginGatedStore
	e := newEnvWith(t, func(c *gateway.Config) {
		gs = &loginGatedStore{Store: c.Store.(*sqlite.Store), armed: make(chan struct{}), reached: make(chan struct{}), release: make(chan struct{})}
		c.Store = gs
	})
	root := e.addUser("root", identity.RoleAdmin, "")
	alice := e.addUser("alice", identity.RoleAgent, "red")
	close(gs.armed)

	type result struct {
		code  int
		token string
		err   error
	}
	done := make(chan result, 1)
	body, _ := json.Marshal(map[string]string{"user": "alice", "password": testPassword, "totp": alice.code()})
	go func() {
		resp, err := e.client().Post(e.srv.URL+"/api/v1/login", "application/json", strings.NewReader(string(body)))
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		var out struct {
			Token string `json:"token"`
		}
		data, _ := io.ReadAll(resp.Body)
		json.Unmarshal(data, &out)
		done <- result{code: resp.StatusCode, token: out.Token}
	}()
	select {
	case <-gs.reached:
	case <-time.After(10 * time.Second):
		t.Fatal("the login never reached the store")
	}
	act(e, root)
	close(gs.release)
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	return res.code, res.token, e, root
}

// TestReenrollDuringLogin: a login with the old password and phone that
// was checked before an admin reset the sign-in, but stored its token
// after the reset deleted the user's tokens, must not leave a working
// token behind: whoever holds the old credentials is out.
func TestReenrollDuringLogin(t *testing.T) {
	code, token, e, _ := loginDuring(t, func(e *env, root *testUser) {
		e.do(root, "POST", "/api/v1/users/alice/reenroll", "{}", 200, nil)
	})
	if code == http.StatusOK {
		t.Errorf("the login checked before the reset succeeded after it")
	}
	if token != "" {
		if code, data := e.send(nil, &testUser{name: "alice", token: token}, "GET", "/api/v1/me", nil); code != http.StatusUnauthorized {
			t.Errorf("the token of the login that raced the reset: %d %s, want 401", code, data)
		}
	}
}

// TestLockDuringLogin: a login checked before an admin locked the account
// but stored after the lock revoked the user's tokens leaves no token that
// an unlock would bring back to life.
func TestLockDuringLogin(t *testing.T) {
	code, token, e, root := loginDuring(t, func(e *env, root *testUser) {
		e.do(root, "POST", "/api/v1/users/alice/lock", "{}", 200, nil)
	})
	if code == http.StatusOK {
		t.Errorf("the login checked before the lock succeeded after it")
	}
	e.do(root, "POST", "/api/v1/users/alice/unlock", "{}", 200, nil)
	if token != "" {
		if code, data := e.send(nil, &testUser{name: "alice", token: token}, "GET", "/api/v1/me", nil); code != http.StatusUnauthorized {
			t.Errorf("after the unlock, the token of the login that raced the lock: %d %s, want 401", code, data)
		}
	}
}
