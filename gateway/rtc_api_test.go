package gateway_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"supportgate/gateway"
	"supportgate/gateway/identity"
	"supportgate/gateway/rtc"
	"supportgate/gateway/rtc/rtctest"
	"supportgate/recorder"
)

func init() {
	addAccess(map[string]string{
		"GET /api/v1/consent/{token}/rtc": "customer",
		"GET /api/v1/sessions/{id}/rtc":   "agent supervisor",
	})
}

// newRTCEnv is a gateway whose relay gathers on loopback and whose
// recordings are encrypted to a fresh compliance identity.
func newRTCEnv(t *testing.T) (*env, *age.X25519Identity) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, func(c *gateway.Config) {
		c.Recipients = []age.Recipient{id.Recipient()}
		c.RTC = rtc.Config{Loopback: true, UDPPortMin: 41000, UDPPortMax: 41999}
	})
	return e, id
}

// dialWS opens a websocket to path, with the client's cookies or u's token.
func (e *env) dialWS(c *http.Client, u *testUser, path string) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: e.mat.CAPool()}, HandshakeTimeout: 5 * time.Second}
	if c != nil {
		d.Jar = c.Jar
	}
	h := http.Header{}
	if u != nil {
		h.Set("Authorization", "Bearer "+u.token)
	}
	return d.Dial("wss"+strings.TrimPrefix(e.srv.URL, "https")+path, h)
}

func TestRTCShareThroughGateway(t *testing.T) {
	e, ident := newRTCEnv(t)
	alice := e.addUser("alice", identity.RoleAgent, "red")
	mallory := e.addUser("mallory", identity.RoleAgent, "blue")
	c := e.newSession(alice, []string{"view", "chat"}, "30m")
	cu := e.customer(c.token())
	cu.open()

	// Not yet approved: no share.
	if _, resp, err := e.dialWS(cu.c, nil, "/api/v1/consent/"+c.token()+"/rtc?csrf="+cu.csrf); err == nil || resp.StatusCode != http.StatusConflict && resp.StatusCode/100 != 4 {
		t.Fatalf("share before approval: got %v, want refusal", err)
	}
	if code, v := cu.post("approve", map[string]any{"scopes": []string{"view", "chat"}}); code != 200 {
		t.Fatalf("approve: %d %v", code, v)
	}
	// Wrong CSRF, another browser, another agent: refused.
	if _, resp, err := e.dialWS(cu.c, nil, "/api/v1/consent/"+c.token()+"/rtc?csrf=x"); err == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("bad csrf: got %v, want 403", err)
	}
	if _, resp, err := e.dialWS(e.client(), nil, "/api/v1/consent/"+c.token()+"/rtc?csrf="+cu.csrf); err == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("other browser: got %v, want 403", err)
	}
	if _, resp, err := e.dialWS(nil, mallory, "/api/v1/sessions/"+c.ID+"/rtc"); err == nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("other agent: got %v, want 404", err)
	}

	sh := e.startShare(cu, c, alice)
	api, pubWS, pub, viewWS, view := sh.api, sh.pubWS, sh.pub, sh.viewWS, sh.view

	const frames = 90
	size := rtctest.FrameSize(1_000_000, 30)
	tick := time.NewTicker(time.Second / 30)
	for i := range frames {
		<-tick.C
		if _, err := pub.WriteFrame(rtctest.Frame(size, i == 0), 30); err != nil {
			t.Fatal(err)
		}
	}
	tick.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for view.Packets.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if view.Packets.Load() == 0 {
		t.Fatal("the agent received no video")
	}
	// A supervisor of the team watches too.
	sam := e.addUser("sam", identity.RoleSupervisor, "red")
	supWS, sup := e.joinShare(api, c, sam)
	// The customer's page lists both as watching the screen.
	watching := func() string { return connected(cu) }
	if got, want := watching(), "alice agent screen, sam supervisor screen"; got != want {
		t.Errorf("customer's view lists %q as connected, want %q", got, want)
	}

	// The customer's network drops; the page reconnects and shares again
	// without a new consent, and the viewers' video continues.
	pubWS.Close()
	pub.Close()
	pubWS, _, err := e.dialWS(cu.c, nil, "/api/v1/consent/"+c.token()+"/rtc?csrf="+cu.csrf)
	if err != nil {
		t.Fatalf("reconnect: %v", err)
	}
	defer pubWS.Close()
	if _, err := rtctest.Message(pubWS, "hello", nil); err != nil {
		t.Fatal(err)
	}
	if pub, err = rtctest.Publish(api, pubWS); err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	before, supBefore := view.Packets.Load(), sup.Packets.Load()
	tick = time.NewTicker(time.Second / 30)
	for i := 0; i < 150 && (view.Packets.Load() <= before || sup.Packets.Load() <= supBefore); i++ {
		<-tick.C
		if _, err := pub.WriteFrame(rtctest.Frame(size, i == 0), 30); err != nil {
			t.Fatal(err)
		}
	}
	tick.Stop()
	if view.Packets.Load() <= before || sup.Packets.Load() <= supBefore {
		t.Fatalf("after the customer reconnected: agent %d->%d, supervisor %d->%d packets",
			before, view.Packets.Load(), supBefore, sup.Packets.Load())
	}

	viewWS.WriteJSON(rtc.Message{Type: "chat", Text: "card please"})
	if m, err := rtctest.Message(pubWS, "chat", nil); err != nil || m.From != "alice" {
		t.Fatalf("customer chat: %+v %v", m, err)
	}
	pubWS.WriteJSON(rtc.Message{Type: "chat", Text: "4111 1111 1111 1111"})
	if m, err := rtctest.Message(viewWS, "chat", func(rtc.Message) {}); err != nil || m.From != "alice" {
		t.Fatalf("agent chat echo: %+v %v", m, err)
	}
	if m, err := rtctest.Message(viewWS, "chat", nil); err != nil || m.From != "customer" {
		t.Fatalf("agent chat: %+v %v", m, err)
	}

	// The customer ends the session: both sockets say so within 1 s.
	start := time.Now()
	if code, v := cu.post("revoke", nil); code != 200 {
		t.Fatalf("revoke: %d %v", code, v)
	}
	for _, ws := range []*websocket.Conn{pubWS, viewWS, supWS} {
		ws.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := rtctest.Message(ws, "ended", nil); err != nil {
			t.Fatalf("no ended message within 1s: %v", err)
		}
	}
	t.Logf("ended on both sides in %v", time.Since(start))
	// Later use is refused.
	if _, _, err := e.dialWS(nil, alice, "/api/v1/sessions/"+c.ID+"/rtc"); err == nil {
		t.Fatal("share after the session ended: accepted")
	}

	path := gateway.RecordingPath(e.mat.Dir, c.ID)
	var rep *recorder.Report
	for time.Since(start) < 5*time.Second {
		if rep, err = recorder.VerifyFile(path); err == nil && rep.Complete {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil || !rep.Complete {
		t.Fatalf("recording: %v (report %+v)", err, rep)
	}
	if _, err := os.Stat(filepath.Dir(path)); err != nil {
		t.Fatal(err)
	}
	rd, err := recorder.OpenFile(path, ident)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var media, keys int
	var chats []string
	for {
		rec, err := rd.Next()
		if err != nil {
			break
		}
		switch rec.Type {
		case recorder.TypeMedia:
			media++
			if rec.IsKeyframe {
				keys++
			}
		case recorder.TypeChat:
			chats = append(chats, rec.From+": "+rec.Text)
		}
	}
	if media < frames-5 || keys == 0 {
		t.Errorf("recorded %d frames (%d keyframes), want about %d", media, keys, frames)
	}
	if len(chats) != 2 || strings.Contains(chats[1], "4111 1111") {
		t.Errorf("recorded chat %q, want 2 messages with the card number redacted", chats)
	}
	t.Logf("recording: %d records, %d frames, chat %q", rep.Records, media, chats)

	// /metrics counts what the ended room relayed and recorded.
	want := map[string]float64{
		"supportgate_screen_rooms_open":                   0,
		"supportgate_screen_frames_recorded_total":        float64(media),
		"supportgate_screen_record_dropped_packets_total": 0,
	}
	var got map[string]float64
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got = e.metricValues(t, "supportgate_screen_")
		if got["supportgate_screen_rooms_open"] == 0 || time.Now().After(deadline) {
			break
		}
	}
	for name, v := range want {
		if got[name] != v {
			t.Errorf("%s = %v, want %v", name, got[name], v)
		}
	}
	if got["supportgate_screen_packets_total"] < float64(media) {
		t.Errorf("supportgate_screen_packets_total = %v, want at least the %d frames recorded", got["supportgate_screen_packets_total"], media)
	}
}

// metricValues fetches /metrics and returns the values of the unlabelled
// series whose names start with prefix.
func (e *env) metricValues(t *testing.T, prefix string) map[string]float64 {
	t.Helper()
	resp, err := e.client().Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %v", resp.StatusCode, err)
	}
	vals := map[string]float64{}
	for line := range strings.Lines(string(body)) {
		name, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || !strings.HasPrefix(name, prefix) {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		vals[name] = f
	}
	return vals
}

// share is a screen share through the gateway: the customer's socket and
// pion publisher, a staff member's socket and pion viewer.
type share struct {
	api           *webrtc.API
	pubWS, viewWS *websocket.Conn
	pub           *rtctest.Publisher
	view          *rtctest.Viewer
}

// startShare connects the approved customer cu of session c as the
// publisher and viewer as a viewer; everything closes when the test ends.
func (e *env) startShare(cu *customer, c created, viewer *testUser) *share {
	t := e.t
	t.Helper()
	sh := &share{api: rtctest.NewAPI()}
	var err error
	if sh.pubWS, _, err = e.dialWS(cu.c, nil, "/api/v1/consent/"+c.token()+"/rtc?csrf="+cu.csrf); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sh.pubWS.Close() })
	if _, err := rtctest.Message(sh.pubWS, "hello", nil); err != nil {
		t.Fatal(err)
	}
	if sh.pub, err = rtctest.Publish(sh.api, sh.pubWS); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sh.pub.Close() })
	if sh.viewWS, _, err = e.dialWS(nil, viewer, "/api/v1/sessions/"+c.ID+"/rtc"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sh.viewWS.Close() })
	if sh.view, err = rtctest.View(sh.api, sh.viewWS, false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sh.view.Close() })
	return sh
}

// joinShare connects u to the screen share of session c as a viewer;
// both close when the test ends.
func (e *env) joinShare(api *webrtc.API, c created, u *testUser) (*websocket.Conn, *rtctest.Viewer) {
	t := e.t
	t.Helper()
	ws, _, err := e.dialWS(nil, u, "/api/v1/sessions/"+c.ID+"/rtc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	v, err := rtctest.View(api, ws, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return ws, v
}

// connected is who the customer's page lists as connected, each as
// "name role channel".
func connected(cu *customer) string {
	_, v := cu.open()
	var who []string
	list, _ := v["connected"].([]any)
	for _, p := range list {
		p, _ := p.(map[string]any)
		who = append(who, fmt.Sprint(p["name"], " ", p["role"], " ", p["channel"]))
	}
	return strings.Join(who, ", ")
}

// TestRTCGatewayStopIsNotSessionEnd: when the gateway stops, the screen
// share's sockets close without "ended", so that the pages reconnect to
// the gateway that starts again, where the session goes on; a revoke
// still says "ended". Before, the broker's Close cancelled the sessions'
// contexts before the relay closed, and every page said the session had
// ended.
func TestRTCGatewayStopIsNotSessionEnd(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ended bool
	}{{"revoked", true}, {"gateway stops", false}} {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := newRTCEnv(t)
			alice := e.addUser("alice", identity.RoleAgent, "red")
			c := e.newSession(alice, []string{"view"}, "30m")
			cu := e.customer(c.token())
			cu.open()
			if code, v := cu.post("approve", map[string]any{"scopes": []string{"view"}}); code != 200 {
				t.Fatalf("approve: %d %v", code, v)
			}
			ws, _, err := e.dialWS(cu.c, nil, "/api/v1/consent/"+c.token()+"/rtc?csrf="+cu.csrf)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			if _, err := rtctest.Message(ws, "hello", nil); err != nil {
				t.Fatal(err)
			}
			if tc.ended {
				e.do(alice, "POST", "/api/v1/sessions/"+c.ID+"/revoke", "{}", 200, nil)
			} else {
				e.g.Close()
			}
			var got []string
			ws.SetReadDeadline(time.Now().Add(10 * time.Second))
			for {
				var m rtc.Message
				if err := ws.ReadJSON(&m); err != nil {
					break
				}
				got = append(got, m.Type)
			}
			if saidEnded := slices.Contains(got, "ended"); saidEnded != tc.ended {
				t.Fatalf("messages before the socket closed: %v; want \"ended\" %v", got, tc.ended)
			}
		})
	}
}
