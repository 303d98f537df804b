package gateway_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"supportgate/gateway/browsertest"
	"supportgate/session"
)

// blip stands between the browsers and the gateway and can take the
// network down: while it is down every request's connection drops, as on
// a Wi-Fi drop or a gateway restart.
type blip struct {
	next http.Handler
	down atomic.Bool

	mu    sync.Mutex
	conns []net.Conn // guarded by mu: the connections the gateway hijacked (websockets)
}

func (b *blip) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if b.down.Load() {
		panic(http.ErrAbortHandler) // drops the connection (or resets the HTTP/2 stream)
	}
	b.next.ServeHTTP(hijackRec{w, b}, r)
}

// cut takes the network down and drops the websockets already open.
func (b *blip) cut() {
	b.down.Store(true)
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.conns {
		c.Close()
	}
	b.conns = nil
}

// hijacked reports how many websockets are open through b.
func (b *blip) hijacked() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

// hijackRec lets the gateway hijack a connection and tells blip.
type hijackRec struct {
	http.ResponseWriter
	b *blip
}

func (h hijackRec) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := h.ResponseWriter.(http.Hijacker).Hijack()
	if err == nil {
		h.b.mu.Lock()
		h.b.conns = append(h.b.conns, c)
		h.b.mu.Unlock()
	}
	return c, rw, err
}

// TestBrowserConsentReconnects: the customer's network drops for 3 s
// during an approved session. The page says it is reconnecting and keeps
// the live view; once the network is back it follows the session again,
// so the agent's request for more time shows, and then the end.
func TestBrowserConsentReconnects(t *testing.T) {
	t.Parallel()
	w := newWebEnv(t)
	link := &blip{next: w.srv.Config.Handler}
	w.srv.Config.Handler = link
	agent := session.Actor{Name: "alice", Role: "agent"}
	s, b := approvedInBrowser(t, w)
	for deadline := time.Now().Add(10 * time.Second); link.hijacked() == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the page never opened its websocket")
		}
	}

	link.cut()
	if err := b.Try(10*time.Second, chromedp.WaitVisible(chromedp.CSS("#reconnecting"))); err != nil {
		t.Fatalf("the page does not say it is reconnecting; it says %q", b.Text("#problem"))
	}
	time.Sleep(3 * time.Second) // the blip: the page retries into a dead network
	b.Do(chromedp.WaitVisible(chromedp.CSS("#live")), chromedp.WaitNotVisible(chromedp.CSS("#problem")))
	link.down.Store(false)

	if _, err := w.g.Broker().RequestExtension(context.Background(), s.ID, agent, 15*time.Minute); err != nil {
		t.Fatal(err)
	}
	b.Do(chromedp.WaitVisible(chromedp.CSS("#extension")), chromedp.WaitNotVisible(chromedp.CSS("#reconnecting")))
	if _, err := w.g.Broker().Revoke(context.Background(), s.ID, agent); err != nil {
		t.Fatal(err)
	}
	b.Do(chromedp.WaitVisible(chromedp.CSS("#ended")))
}

// approvedInBrowser has alice ask Bob for a 10-minute chat session and
// Bob approve it on the consent page, in a browser of his own.
func approvedInBrowser(t *testing.T, w *webEnv) (*session.Session, *browsertest.Profile) {
	t.Helper()
	s, token, err := w.g.Broker().Create(context.Background(), session.Actor{Name: "alice", Role: "agent"},
		session.NewRequest{Agent: "alice", AgentName: "Alice", Customer: "Bob",
			Scopes: session.Scopes{{Kind: session.Chat}}, Duration: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	b := w.browser()
	b.Do(chromedp.Navigate(w.srv.URL+"/c/"+token), chromedp.WaitVisible(chromedp.CSS("#request")),
		chromedp.Click(chromedp.CSS("#approve")), chromedp.WaitVisible(chromedp.CSS("#live")))
	return s, b
}
