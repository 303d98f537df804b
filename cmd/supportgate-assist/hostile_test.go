package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/crypto/ssh"

	"supportgate/internal/proctest"
	"supportgate/internal/syncbuf"
	"supportgate/session"
)

// hostileGateway is a gateway that lies: a TLS proxy, with the real
// gateway's certificate, in front of tg, that hands each JSON answer to
// rewrite (with the request's method and path) before the helper reads
// it; rewrite may return a status to answer instead. The session's watch
// websocket is accepted and then says nothing, as a gateway that does not
// tell the helper of the session's end.
func hostileGateway(t *testing.T, tg *testGateway, rewrite func(method, path string, m map[string]any) int) string {
	t.Helper()
	target, _ := url.Parse(tg.url)
	rp := &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: tg.keys.CAPool()}},
		ModifyResponse: func(resp *http.Response) error {
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				return nil
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			var m map[string]any
			if json.Unmarshal(b, &m) == nil && resp.StatusCode == http.StatusOK {
				if code := rewrite(resp.Request.Method, resp.Request.URL.Path, m); code != 0 {
					resp.StatusCode = code
				}
				b, _ = json.Marshal(m)
			}
			resp.Body = io.NopCloser(bytes.NewReader(b))
			resp.ContentLength = int64(len(b))
			resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
			return nil
		},
	}
	up := websocket.Upgrader{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/watch") {
			ws, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer ws.Close()
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		}
		rp.ServeHTTP(w, r)
	}))
	tc := tg.keys.TLSConfig()
	tc.NextProtos = []string{"http/1.1"}
	srv.TLS = tc
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

// throughHostile is link, reached through the hostile gateway at proxy.
func throughHostile(tg *testGateway, link, proxy string) string {
	return proxy + strings.TrimPrefix(link, tg.url)
}

// endHelper ends a helper still running (Ctrl-C) and waits for it.
func endHelper(t *testing.T, h *helperRun, interrupt context.CancelFunc) {
	t.Helper()
	interrupt()
	select {
	case <-h.code:
	case <-time.After(30 * time.Second):
		t.Errorf("helper still running 30 s after Ctrl-C:\n%s\n%s", h.out, h.errOut)
	}
}

// TestHelperServesOnlyWhatWasShown: the customer is shown and agrees to
// tunnel:80; the gateway then enrolls the helper with shell too. The
// helper serves the tunnel only, and says it refused the rest.
func TestHelperServesOnlyWhatWasShown(t *testing.T) {
	tg := newTestGateway(t)
	_, link := tg.newSession(t, "tunnel:80", 30*time.Minute)
	proxy := hostileGateway(t, tg, func(method, path string, m map[string]any) int {
		if path == "/api/v1/assist/enroll" {
			m["scopes"] = []string{"shell", "tunnel:80,22"}
		}
		return 0
	})
	ctx, interrupt := context.WithCancel(context.Background())
	h := startHelper(t, ctx, tg, throughHostile(tg, link, proxy), terminal(t, "y\n"))
	defer endHelper(t, h, interrupt)
	h.waitFor(t, "Connected:")
	out := h.out.String()
	for _, want := range []string{"Allow Alice Agent to use tunnel:80 on this machine?",
		"The gateway asked for more than you allowed (shell, tunnel:22): refused.", "Alice Agent may now use tunnel:80.\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestHelperSanitisesGatewayText: what the gateway says reaches the
// customer's terminal without escape sequences, controls, bidirectional
// overrides or line separators.
func TestHelperSanitisesGatewayText(t *testing.T) {
	tg := newTestGateway(t)
	s, link := tg.newSession(t, "shell", 30*time.Minute)
	proxy := hostileGateway(t, tg, func(method, path string, m map[string]any) int {
		if method == "GET" && strings.HasPrefix(path, "/api/v1/consent/") {
			m["agent"] = map[string]any{"name": "Alice\x1b]52;c;cm0gLXJmIH4K\x07 Agent", "org": "ACME\x1b[2J Support\u009b8m"}
			m["reason"] = "fix the printer\u202e exe.gnp\u2028\u2029 now\r\x1b[A"
			m["verification_code"] = s.VerificationCode + "\x1b[8m"
			m["duration"] = "30m\x07"
		}
		return 0
	})
	h := startHelper(t, context.Background(), tg, throughHostile(tg, link, proxy), terminal(t, "n\n"))
	if code := h.exit(t, 20*time.Second); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, h.out, h.errOut)
	}
	out := h.out.String() + h.errOut.String()
	for _, bad := range []string{"\x1b]", "\x1b[2J", "\x1b[8m", "\x1b[A", "\u009b", "\u202e", "\u2028", "\u2029", "\x07", "\r"} {
		if strings.Contains(out, bad) {
			t.Errorf("output holds %q:\n%q", bad, out)
		}
	}
	for _, want := range []string{"Alice Agent", "ACME Support asks", "reason:            fix the printer exe.gnp now", s.VerificationCode} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%q", want, out)
		}
	}
}

// TestHelperRevokesWhenEnrollFails: the customer said yes and the
// gateway then failed the enrollment: the helper revokes the session it
// approved (it would otherwise stay active, with nobody to end it), and
// the gateway's error reaches the terminal without its escapes.
func TestHelperRevokesWhenEnrollFails(t *testing.T) {
	tg := newTestGateway(t)
	s, link := tg.newSession(t, "shell", 30*time.Minute)
	proxy := hostileGateway(t, tg, func(method, path string, m map[string]any) int {
		if path == "/api/v1/assist/enroll" {
			clear(m)
			m["error"] = "enrollment \x1b]52;c;AAAA\x07broke"
			return http.StatusInternalServerError
		}
		return 0
	})
	h := startHelper(t, context.Background(), tg, throughHostile(tg, link, proxy), terminal(t, "y\n"))
	if code := h.exit(t, 20*time.Second); code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, h.out, h.errOut)
	}
	if got := h.errOut.String(); !strings.Contains(got, "enrollment broke") || strings.Contains(got, "\x1b") {
		t.Errorf("error %q, want the gateway's, without escapes", got)
	}
	got, _ := tg.g.Broker().Get(context.Background(), s.ID)
	if got.State != session.Ended || got.EndReason != session.EndRevoked {
		t.Errorf("session %s/%s, want ended/revoked", got.State, got.EndReason)
	}
}

// TestHelperCtrlCAtPrompt: Ctrl-C while the helper asks is a no at once,
// without Enter, and denies the session.
func TestHelperCtrlCAtPrompt(t *testing.T) {
	tg := newTestGateway(t)
	s, link := tg.newSession(t, "shell", 30*time.Minute)
	ctx, interrupt := context.WithCancel(context.Background())
	h := startHelper(t, ctx, tg, link, terminal(t, "")) // nobody answers
	h.waitFor(t, "[y/N]")
	interrupt()
	if code := h.exit(t, 10*time.Second); code != 0 {
		t.Errorf("exit %d\n%s%s", code, h.out, h.errOut)
	}
	got, _ := tg.g.Broker().Get(context.Background(), s.ID)
	if got.State != session.Ended || got.EndReason != session.EndDenied {
		t.Errorf("session %s/%s, want ended/denied", got.State, got.EndReason)
	}
}

// TestHelperEnforcesTimeBox: the gateway says the session ends in a
// moment, then says nothing more: the helper closes the tunnel itself
// when that time has passed, says so, and revokes.
func TestHelperEnforcesTimeBox(t *testing.T) {
	defer func(g time.Duration) { expiryGrace = g }(expiryGrace)
	expiryGrace = 0
	tg := newTestGateway(t)
	s, link := tg.newSession(t, "shell", 30*time.Minute)
	end := time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339Nano)
	proxy := hostileGateway(t, tg, func(method, path string, m map[string]any) int {
		if v, ok := m["expires_at"]; ok && v != nil {
			m["expires_at"] = end
		}
		return 0
	})
	ctx, interrupt := context.WithCancel(context.Background())
	defer interrupt()
	h := startHelper(t, ctx, tg, throughHostile(tg, link, proxy), terminal(t, "y\n"))
	h.waitFor(t, "Connected:")
	if code := h.exit(t, 20*time.Second); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, h.out, h.errOut)
	}
	if !strings.Contains(h.out.String(), "the time box ran out at") {
		t.Errorf("helper did not say why it closed:\n%s", h.out)
	}
	got, _ := tg.g.Broker().Get(context.Background(), s.ID)
	if got.State != session.Ended {
		t.Errorf("session %s, want ended", got.State)
	}
}

// TestHelperCtrlCWithBackgroundJob: the agent left a job in the background
// of a PTY shell, holding the PTY open; Ctrl-C still revokes at once, and
// the job does not outlive the helper.
func TestHelperCtrlCWithBackgroundJob(t *testing.T) {
	tg := newTestGateway(t)
	s, link := tg.newSession(t, "shell", 30*time.Minute)
	ctx, interrupt := context.WithCancel(context.Background())
	defer interrupt()
	h := startHelper(t, ctx, tg, link, strings.NewReader(""), "--yes")
	h.waitFor(t, "Connected:")

	marker := fmt.Sprintf("7%d", time.Now().UnixNano()%1e9+1e9) // no other process has it
	defer func() {
		for _, pid := range sleeping(marker) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}()
	hk, err := tg.g.WireGuard().HostKey(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := tg.g.WireGuard().Dial(dctx, s.ID, session.Need{Agent: "alice", Kind: session.Shell})
	if err != nil {
		t.Fatal(err)
	}
	cc, chans, reqs, err := ssh.NewClientConn(c, "helper", &ssh.ClientConfig{
		User: "supportgate", Auth: []ssh.AuthMethod{ssh.PublicKeys(tg.keys.SSHHostKey)},
		HostKeyCallback: ssh.FixedHostKey(hk), Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	client := ssh.NewClient(cc, chans, reqs)
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	var out syncbuf.Buffer
	sess.Stdout = &out
	in, _ := sess.StdinPipe()
	if err := sess.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	io.WriteString(in, "sleep "+marker+" & setsid sleep "+marker+" & echo STAR''TED\n")
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "STARTED") || len(sleeping(marker)) < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("jobs did not start: %q, %v", out.String(), sleeping(marker))
		}
	}
	interrupt()
	if code := h.exit(t, 5*time.Second); code != 0 {
		t.Errorf("exit %d: %s", code, h.errOut)
	}
	got, _ := tg.g.Broker().Get(context.Background(), s.ID)
	if got.State != session.Ended || got.EndReason != session.EndRevoked {
		t.Errorf("session %s/%s, want ended/revoked", got.State, got.EndReason)
	}
	if left := sleeping(marker); len(left) > 0 {
		t.Errorf("jobs outlive the helper: %v", left)
	}
}

// sleeping lists the processes running sleep with the argument marker.
func sleeping(marker string) []int {
	want := []byte("sleep\x00" + marker + "\x00")
	return proctest.Matching(func(cmdline []byte) bool { return bytes.Equal(cmdline, want) })
}
