package gateway

import (
	"context"
	"crypto/hmac"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"supportgate/gateway/audit"
	"supportgate/gateway/rtc"
	"supportgate/session"
)

// Screen share signaling: one websocket per participant, bound to the
// session. The customer's socket is authenticated like the consent API
// (token, client cookie, and the CSRF token as ?csrf= because a browser
// cannot set headers on a websocket); the agent's and supervisors' by
// their login and Broker.Authorize with the view scope. Both select on the
// session context through the relay's room, so the session ending closes
// both PeerConnections and both sockets. A viewer's socket also ends with
// its user's access (openStaffConn): a supervisor locked mid-session stops
// seeing the screen and the chat at once.

func init() { routeSets = append(routeSets, (*Gateway).rtcRoutes) }

func (g *Gateway) rtcRoutes() []route {
	return []route{
		{"GET", "/api/v1/consent/{token}/rtc", customer, g.handleConsentRTC},
		{"GET", "/api/v1/sessions/{id}/rtc", roles(agent, supervisor), g.handleSessionRTC},
	}
}

// rtcMaxMessage bounds one signaling message (an SDP with candidates).
const rtcMaxMessage = 64 << 10

func (g *Gateway) handleConsentRTC(w http.ResponseWriter, r *http.Request, _ *principal) {
	token, key, err := g.consentRequest(r)
	if err == nil && key == "" {
		err = errorf(http.StatusForbidden, "this link was not opened in this browser")
	}
	if err == nil {
		got, want := r.URL.Query().Get("csrf"), g.csrfToken(key)
		if got == "" || !hmac.Equal([]byte(got), []byte(want)) {
			err = errorf(http.StatusForbidden, "missing or invalid CSRF token")
		}
	}
	var s *session.Session
	if err == nil {
		s, _, err = g.broker.Open(r.Context(), token, key, customerActor(r))
	}
	if err != nil {
		g.consentErr(w, r, err)
		return
	}
	// The consent link and the session govern the customer's socket.
	g.serveRTC(r.Context(), w, r, s, rtc.Publisher, "customer", customerActor(r))
}

func (g *Gateway) handleSessionRTC(w http.ResponseWriter, r *http.Request, p *principal) {
	s, err := g.visibleSession(r.Context(), r, p)
	if err == nil && !canAct(p, s) {
		err = session.ErrNotFound
	}
	var access context.Context
	var release func()
	if err == nil {
		access, release, err = g.openStaffConn(r.Context(), p, false)
	}
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	defer release()
	g.serveRTC(access, w, r, s, rtc.Viewer, p.user.Name, session.Actor{Name: p.user.Name, Role: string(p.role), Remote: clientAddr(r)})
}

// serveRTC authorizes the view scope, opens the session's recording and
// room, and serves the participant's websocket until it or the session
// ends, or access is done: then the page is told why and the socket
// closed, which ends Room.Serve and with it the participant's
// PeerConnection.
func (g *Gateway) serveRTC(access context.Context, w http.ResponseWriter, r *http.Request, s *session.Session, role rtc.Role, name string, by session.Actor) {
	sctx, s, err := g.broker.Authorize(r.Context(), s.ID, session.Need{Agent: s.Agent, Kind: session.View})
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	rec, err := g.recording(s.ID)
	if err != nil {
		g.log.Error("screen share refused: no recording", "session", s.ID, "err", err)
		g.writeErr(w, r, errorf(http.StatusServiceUnavailable, "the session cannot be recorded; screen sharing is unavailable"))
		return
	}
	room, err := g.rtc.Room(sctx, s.ID, rec, rtc.RoomOptions{Chat: s.Scopes.Has(session.Chat), Agent: s.Agent})
	if err != nil {
		g.writeErr(w, r, session.ErrEnded)
		return
	}
	conn, err := g.upgrader().Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	conn.SetReadLimit(rtcMaxMessage)
	g.record(r.Context(), audit.Event{Type: "screen.joined", Actor: by.Name, Role: by.Role, Session: s.ID, Remote: by.Remote,
		Detail: map[string]string{"as": string(role)}})
	if role == rtc.Viewer {
		// The customer's page lists who is watching (DESIGN section 2:
		// both parties are told who is connected).
		who := Participant{Name: name, Role: by.Role, Channel: "screen"}
		g.Presence(s.ID, who, true)
		defer g.Presence(s.ID, who, false)
	}

	ws := &wsConn{Conn: conn, touch: func() { g.broker.Touch(s.ID) }}
	ctx, cancel := context.WithCancel(sctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // keepalive: pings the page, and a live share counts as activity
		defer wg.Done()
		t := time.NewTicker(wsPingEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-access.Done():
				ws.end(accessEndedReason(access))
				return
			case <-t.C:
			}
			if conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(wsWriteTimeout)) != nil {
				conn.Close()
				return
			}
			if room.Sharing() {
				g.broker.Touch(s.ID)
			}
		}
	}()
	room.Serve(ws, role, name)
	cancel()
	wg.Wait()
	g.record(context.WithoutCancel(r.Context()), audit.Event{Type: "screen.left", Actor: by.Name, Role: by.Role, Session: s.ID, Remote: by.Remote,
		Detail: map[string]string{"as": string(role)}})
}

// wsConn is a websocket as an rtc.Conn: reads time out without pongs, and
// each message from the page counts as session activity.
type wsConn struct {
	*websocket.Conn
	touch func()
	once  sync.Once
	wmu   sync.Mutex // serializes WriteJSON: the room's writer and end both write
}

func (c *wsConn) ReadJSON(v any) error {
	c.once.Do(func() {
		c.SetPongHandler(func(string) error { return c.SetReadDeadline(time.Now().Add(2 * wsPingEvery)) })
	})
	c.SetReadDeadline(time.Now().Add(2 * wsPingEvery))
	if err := c.Conn.ReadJSON(v); err != nil {
		return err
	}
	c.touch()
	return nil
}

func (c *wsConn) WriteJSON(v any) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.SetWriteDeadline(time.Now().Add(wsWriteTimeout))
	return c.Conn.WriteJSON(v)
}

// end tells the page its participation ended and why, then closes the
// socket, which makes Room.Serve return.
func (c *wsConn) end(reason string) {
	c.WriteJSON(rtc.Message{Type: "ended", Reason: reason})
	c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, reason), time.Now().Add(time.Second))
	c.Close()
}

var _ rtc.Conn = (*wsConn)(nil)
