package gateway

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"supportgate/session"
)

// Websocket limits.
const (
	wsMaxMessage   = 4 << 10 // bytes a client may send in one message
	wsWriteTimeout = 5 * time.Second
	wsPingEvery    = 20 * time.Second
	wsQueue        = 64 // updates buffered per watcher before it is dropped
	maxWatchers    = 10_000
)

// hub fans session updates out to websocket watchers.
type hub struct {
	mu       sync.Mutex // guards watchers, closed
	watchers map[*watcher]struct{}
	closed   bool
}

// watcher is one websocket client and what it may see.
type watcher struct {
	match func(*session.Session) bool
	ch    chan *session.Session
	done  chan struct{} // closed when the hub drops the watcher
	once  sync.Once
}

func newHub() *hub { return &hub{watchers: map[*watcher]struct{}{}} }

func (w *watcher) stop() { w.once.Do(func() { close(w.done) }) }

// add registers a watcher; it returns nil when the hub is full or closed.
func (h *hub) add(match func(*session.Session) bool) *watcher {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || len(h.watchers) >= maxWatchers {
		return nil
	}
	w := &watcher{match: match, ch: make(chan *session.Session, wsQueue), done: make(chan struct{})}
	h.watchers[w] = struct{}{}
	return w
}

func (h *hub) remove(w *watcher) {
	h.mu.Lock()
	delete(h.watchers, w)
	h.mu.Unlock()
	w.stop()
}

// publish sends s to every watcher that may see it. A watcher too slow to
// keep up is dropped rather than allowed to block the broker.
func (h *hub) publish(s *session.Session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers {
		if !w.match(s) {
			continue
		}
		select {
		case w.ch <- s.Clone():
		default:
			delete(h.watchers, w)
			w.stop()
		}
	}
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for w := range h.watchers {
		w.stop()
	}
	clear(h.watchers)
}

// upgrader accepts websockets only from pages of this gateway.
func (g *Gateway) upgrader() *websocket.Upgrader {
	return &websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   1024,
		WriteBufferSize:  4096,
		CheckOrigin: func(r *http.Request) bool {
			origin := r.Header.Get("Origin")
			if origin == "" {
				return true // not a browser: bearer token or client key checked already
			}
			return origin == g.public.Scheme+"://"+g.public.Host || origin == "https://"+r.Host
		},
	}
}

// serveWatch upgrades the request and streams each update that render
// turns into a message, starting with initial. It returns when the client
// goes away, the hub drops the watcher, access is done (the caller's
// right to the feed ended: see openStaffConn), or final reports the last
// message was sent (the session ended); finished closes right after
// initial.
func (g *Gateway) serveWatch(access context.Context, w http.ResponseWriter, r *http.Request, match func(*session.Session) bool,
	initial []any, finished bool, render func(*session.Session) (msg any, final bool)) {
	wt := g.hub.add(match)
	if wt == nil {
		g.writeErr(w, r, errorf(http.StatusServiceUnavailable, "too many live connections"))
		return
	}
	defer g.hub.remove(wt)
	conn, err := g.upgrader().Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	defer conn.Close()
	conn.SetReadLimit(wsMaxMessage)

	ctx, cancel := context.WithCancel(access)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // reader: only pongs and close frames are expected
		defer wg.Done()
		defer cancel()
		conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(2 * wsPingEvery)) })
		conn.SetReadDeadline(time.Now().Add(2 * wsPingEvery))
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}()
	defer wg.Wait()
	defer conn.Close()

	send := func(v any) bool {
		conn.SetWriteDeadline(time.Now().Add(wsWriteTimeout))
		return conn.WriteJSON(v) == nil
	}
	for _, m := range initial {
		if !send(m) {
			return
		}
	}
	if finished {
		conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "session ended"), time.Now().Add(time.Second))
		return
	}
	ping := time.NewTicker(wsPingEvery)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			if access.Err() != nil {
				conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, accessEndedReason(access)), time.Now().Add(time.Second))
			}
			return
		case <-wt.done:
			conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "gateway closing"), time.Now().Add(time.Second))
			return
		case <-ping.C:
			if conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(wsWriteTimeout)) != nil {
				return
			}
		case s := <-wt.ch:
			msg, final := render(s)
			if !send(msg) {
				return
			}
			if final {
				conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "session ended"), time.Now().Add(time.Second))
				return
			}
		}
	}
}
