package gateway_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"supportgate/gateway"
	"supportgate/gateway/identity"
)

// TestConcurrentLoginFailuresLock fires wrong logins for one account all
// at once, each from its own address so the per-address rate limit lets
// them through. Every one must count: the account ends up locked, the
// right credentials are refused while it is, and the guesses that arrived
// after the lock did not extend it.
func TestConcurrentLoginFailuresLock(t *testing.T) {
	const guesses = 12
	// A hash slow next to a request's trip makes every guess read the
	// account before any guess stores its failure, the race at its widest.
	e := newEnvWith(t, func(c *gateway.Config) {
		c.PasswordParams = identity.PasswordParams{Memory: 8 << 10, Time: 2, Threads: 1}
	})
	alice := e.addUser("alice", identity.RoleAgent, "")

	clients := make([]*http.Client, guesses)
	for i := range clients {
		clients[i] = e.clientFrom(net.IPv4(127, 0, 0, byte(i+2)))
		t.Cleanup(clients[i].CloseIdleConnections)
		// Connect before the burst so the guesses reach the handler together.
		if err := e.get(clients[i], "/healthz"); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
	}
	wrong, _ := json.Marshal(map[string]string{"user": "alice", "password": "wrong password here", "totp": alice.code()})
	right, _ := json.Marshal(map[string]string{"user": "alice", "password": testPassword, "totp": alice.code()})
	start := make(chan struct{})
	codes := make([]int, guesses)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			code, err := e.postJSON(c, "/api/v1/login", wrong)
			if err != nil {
				t.Errorf("guess %d: %v", i, err)
			}
			codes[i] = code
		}()
	}
	// The owner logs in amid the guesses. Whenever that lands, at least
	// MaxFailures guesses are left after it, so it must not end unlocked.
	var rightCode int
	owner := e.clientFrom(net.IPv4(127, 0, 0, 1))
	t.Cleanup(owner.CloseIdleConnections)
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-start
		code, err := e.postJSON(owner, "/api/v1/login", right)
		if err != nil {
			t.Errorf("right login: %v", err)
		}
		rightCode = code
	}()
	close(start)
	wg.Wait()
	for i, code := range codes {
		if code != http.StatusUnauthorized && code != http.StatusTooManyRequests {
			t.Errorf("guess %d: got %d, want 401 or 429", i, code)
		}
	}
	if rightCode != http.StatusOK && rightCode != http.StatusUnauthorized && rightCode != http.StatusTooManyRequests {
		t.Errorf("right login amid the guesses: got %d, want 200, 401 or 429", rightCode)
	}

	u, err := e.store.GetUser(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if now := e.clock.Now(); !u.LockedUntil.After(now) {
		t.Fatalf("after %d concurrent failures: got failures %d, locked until %v, want locked past %v", guesses, u.Failures, u.LockedUntil, now)
	}
	good := map[string]string{"user": "alice", "password": testPassword, "totp": alice.code()}
	if code, data := e.send(nil, nil, "POST", "/api/v1/login", good); code != http.StatusTooManyRequests || !strings.Contains(string(data), "locked") {
		t.Fatalf("right credentials while locked: got %d %s, want 429 account locked", code, data)
	}
	e.clock.Advance(identity.DefaultLockout.LockFor + time.Second)
	good["totp"] = alice.code()
	if code, data := e.send(nil, nil, "POST", "/api/v1/login", good); code != http.StatusOK {
		t.Fatalf("right credentials after the lock: got %d %s, want 200", code, data)
	}
}

// clientFrom returns a client like client's whose connections come from
// the loopback address ip, a client address of its own for the gateway.
func (e *env) clientFrom(ip net.IP) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
	return &http.Client{Transport: &http.Transport{
		DialContext:     d.DialContext,
		TLSClientConfig: &tls.Config{RootCAs: e.mat.CAPool()},
	}}
}

// get and postJSON send a request without failing the test, so that
// goroutines other than the test's may call them.
func (e *env) get(c *http.Client, path string) error {
	resp, err := c.Get(e.srv.URL + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: got %d, want 200", path, resp.StatusCode)
	}
	return nil
}

func (e *env) postJSON(c *http.Client, path string, body []byte) (int, error) {
	resp, err := c.Post(e.srv.URL+path, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}
