package main

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"supportgate/session"
)

// hijacked records the connections handlers take over (the websockets),
// so that a test can drop them as a restart would.
type hijacked struct {
	http.ResponseWriter
	mu    *sync.Mutex
	conns *[]net.Conn
}

func (h hijacked) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := h.ResponseWriter.(http.Hijacker).Hijack()
	if err == nil {
		h.mu.Lock()
		*h.conns = append(*h.conns, c)
		h.mu.Unlock()
	}
	return c, rw, err
}

// TestHelperRidesOutProxyErrors: the gateway restarts behind a reverse
// proxy, which answers 502 for a few seconds. The helper used to take the
// first 502 for a refusal and quit, with the session open and no way for
// the customer to end it (the link is bound to the helper). It now keeps
// trying, as when the gateway is out of reach, and comes back.
func TestHelperRidesOutProxyErrors(t *testing.T) {
	tg := newTestGateway(t)
	var restarting atomic.Bool
	var mu sync.Mutex
	var conns []net.Conn
	inner := tg.srv.Config.Handler
	tg.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if restarting.Load() {
			http.Error(w, "502 Bad Gateway", http.StatusBadGateway)
			return
		}
		inner.ServeHTTP(hijacked{w, &mu, &conns}, r)
	})
	s, link := tg.newSession(t, "shell", 30*time.Minute)
	h := startHelper(t, context.Background(), tg, link, terminal(t, "y\n"))
	h.waitFor(t, "Connected:")

	restarting.Store(true)
	mu.Lock()
	for _, c := range conns {
		c.Close() // the restart drops the helper's websocket
	}
	mu.Unlock()
	h.waitFor(t, "lost contact with the gateway")
	time.Sleep(3 * time.Second)
	restarting.Store(false)
	h.waitFor(t, "in contact with the gateway again")
	if got, _ := tg.g.Broker().Get(context.Background(), s.ID); got.State != session.Active {
		t.Fatalf("session %s after the restart, want active", got.State)
	}
	if strings.Contains(h.errOut.String(), "closed the tunnel") {
		t.Errorf("the helper closed its tunnel:\n%s", h.errOut.String())
	}
	tg.g.Broker().Revoke(context.Background(), s.ID, session.Actor{Name: "alice", Role: "agent"})
	if code := h.exit(t, 10*time.Second); code != 0 {
		t.Errorf("exit %d after the agent revoked:\n%s", code, h.errOut.String())
	}
}
