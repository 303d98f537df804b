package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/crypto/ssh"

	"supportgate/assist"
	"supportgate/gateway"
	"supportgate/gateway/identity"
	"supportgate/gateway/keys"
	"supportgate/gateway/sqlite"
	"supportgate/internal/syncbuf"
	"supportgate/session"
)

// testGateway is an in-process gateway with a WireGuard hub, all on loopback.
type testGateway struct {
	g    *gateway.Gateway
	url  string
	ca   string
	keys *keys.Material
	srv  *httptest.Server
}

func newTestGateway(t *testing.T) *testGateway {
	t.Helper()
	dir := t.TempDir()
	mat, _, err := keys.LoadOrCreate(filepath.Join(dir, "data"), keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(filepath.Join(dir, "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	srv.TLS = mat.TLSConfig()
	srv.StartTLS()
	g, err := gateway.New(gateway.Config{
		Store: st, Keys: mat, PublicURL: srv.URL, Org: "ACME Support",
		PasswordParams: identity.PasswordParams{Memory: 1024, Time: 1, Threads: 1},
		WireGuard:      uc, WireGuardEndpoint: uc.LocalAddr().String(),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = g.Handler()
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(); g.Close(); uc.Close(); st.Close() })
	if _, err := g.Accounts().Create(context.Background(), gateway.NewUser{Name: "alice", DisplayName: "Alice Agent", Role: identity.RoleAgent, Password: "a long test passphrase"}); err != nil {
		t.Fatal(err)
	}
	return &testGateway{srv: srv, g: g, url: srv.URL, ca: filepath.Join(dir, "data", keys.CACertFile), keys: mat}
}

func (tg *testGateway) newSession(t *testing.T, scopes string, d time.Duration) (*session.Session, string) {
	t.Helper()
	sc, err := session.ParseScopes(scopes)
	if err != nil {
		t.Fatal(err)
	}
	s, tok, err := tg.g.Broker().Create(context.Background(), session.Actor{Name: "alice", Role: "agent"},
		session.NewRequest{Agent: "alice", AgentName: "Alice Agent", Customer: "Bob", Scopes: sc, Duration: d})
	if err != nil {
		t.Fatal(err)
	}
	return s, tg.url + "/c/" + tok
}

type helperRun struct {
	out, errOut *syncbuf.Buffer
	code        chan int
	ended       time.Time
}

func startHelper(t *testing.T, ctx context.Context, tg *testGateway, link string, stdin io.Reader, args ...string) *helperRun {
	h := &helperRun{out: &syncbuf.Buffer{}, errOut: &syncbuf.Buffer{}, code: make(chan int, 1)}
	if !strings.Contains(link, "#sha256=") {
		args = append([]string{"--ca", tg.ca}, args...)
	}
	go func() {
		h.code <- run(ctx, append(args, link), stdin, h.out, h.errOut)
	}()
	return h
}

// terminal is a real terminal for the helper's stdin on which the customer
// has typed answer.
func terminal(t *testing.T, answer string) *os.File {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close(); ptmx.Close() })
	if _, err := ptmx.WriteString(answer); err != nil {
		t.Fatal(err)
	}
	return tty
}

// pipe is a stdin that is not a terminal, holding answer: what a helper
// started by a script (or with its input redirected) reads.
func pipe(t *testing.T, answer string) *os.File {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	w.WriteString(answer)
	w.Close()
	return r
}

func (h *helperRun) waitFor(t *testing.T, text string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(h.out.String(), text); {
		select {
		case c := <-h.code:
			t.Fatalf("helper exited %d before %q:\n%s\n%s", c, text, h.out, h.errOut)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("helper never printed %q:\n%s\n%s", text, h.out, h.errOut)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (h *helperRun) exit(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case c := <-h.code:
		return c
	case <-time.After(within):
		t.Fatalf("helper still running %v later:\n%s\n%s", within, h.out, h.errOut)
		return -1
	}
}

func shellCommand(t *testing.T, tg *testGateway, id, cmd string) (string, error) {
	t.Helper()
	hk, err := tg.g.WireGuard().HostKey(id)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := tg.g.WireGuard().Dial(ctx, id, session.Need{Agent: "alice", Kind: session.Shell})
	if err != nil {
		return "", err
	}
	cc, chans, reqs, err := ssh.NewClientConn(c, "helper", &ssh.ClientConfig{
		User: "supportgate", Auth: []ssh.AuthMethod{ssh.PublicKeys(tg.keys.SSHHostKey)},
		HostKeyCallback: ssh.FixedHostKey(hk), Timeout: 10 * time.Second,
	})
	if err != nil {
		return "", err
	}
	client := ssh.NewClient(cc, chans, reqs)
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return "", err
	}
	out, err := sess.CombinedOutput(cmd)
	return string(out), err
}

func TestHelperShowsAsksAndServes(t *testing.T) {
	tg := newTestGateway(t)
	s, link := tg.newSession(t, "shell,tunnel:80", 30*time.Minute)
	h := startHelper(t, context.Background(), tg, link, terminal(t, "y\n"))
	h.waitFor(t, "Connected:")
	for _, want := range []string{"ACME Support asks", "Alice Agent", s.VerificationCode, "shell, tunnel:80", "30m0s",
		"Allow Alice Agent to use shell, tunnel:80 on this machine? [y/N]"} {
		if !strings.Contains(h.out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, h.out)
		}
	}
	out, err := shellCommand(t, tg, s.ID, "echo via helper")
	if err != nil || out != "via helper\n" {
		t.Fatalf("command through the helper: %q, %v", out, err)
	}
	start := time.Now()
	if _, err := tg.g.Broker().Revoke(context.Background(), s.ID, session.Actor{Name: "alice", Role: "agent"}); err != nil {
		t.Fatal(err)
	}
	if code := h.exit(t, time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if !strings.Contains(h.out.String(), "session ended: it was revoked") {
		t.Errorf("no reason given:\n%s", h.out)
	}
	t.Logf("helper exited %v after the revoke", time.Since(start))
}

func TestHelperDenies(t *testing.T) {
	tg := newTestGateway(t)
	s, link := tg.newSession(t, "shell", 30*time.Minute)
	h := startHelper(t, context.Background(), tg, link, terminal(t, "n\n"))
	if code := h.exit(t, 20*time.Second); code != 0 {
		t.Errorf("exit %d: %s", code, h.errOut)
	}
	got, _ := tg.g.Broker().Get(context.Background(), s.ID)
	if got.State != session.Ended || got.EndReason != session.EndDenied {
		t.Errorf("session %s/%s, want ended/denied", got.State, got.EndReason)
	}
}

// TestHelperStrayEnter: an Enter pressed while the helper was connecting
// is not a no: the helper asks again, and the answer after it counts.
// Before, the empty line denied the session.
func TestHelperStrayEnter(t *testing.T) {
	tg := newTestGateway(t)
	s, link := tg.newSession(t, "shell", 30*time.Minute)
	h := startHelper(t, context.Background(), tg, link, terminal(t, "\n  \ny\n"))
	h.waitFor(t, "Please answer y to allow or n to refuse")
	h.waitFor(t, "Connected:")
	got, _ := tg.g.Broker().Get(context.Background(), s.ID)
	if got.State != session.Active {
		t.Errorf("session %s/%s after Enter, Enter, y; want active", got.State, got.EndReason)
	}
	tg.g.Broker().Revoke(context.Background(), s.ID, session.Actor{Name: "alice", Role: "agent"})
	h.exit(t, 10*time.Second)
}

func TestHelperCtrlCRevokes(t *testing.T) {
	tg := newTestGateway(t)
	s, link := tg.newSession(t, "shell", 30*time.Minute)
	ctx, interrupt := context.WithCancel(context.Background())
	h := startHelper(t, ctx, tg, link, strings.NewReader(""), "--yes")
	h.waitFor(t, "Connected:")
	if !tg.g.WireGuard().Enrolled(s.ID) {
		t.Fatal("not enrolled")
	}
	interrupt()
	if code := h.exit(t, time.Second); code != 0 {
		t.Errorf("exit %d: %s", code, h.errOut)
	}
	got, _ := tg.g.Broker().Get(context.Background(), s.ID)
	if got.State != session.Ended || got.EndReason != session.EndRevoked {
		t.Errorf("session %s/%s, want ended/revoked", got.State, got.EndReason)
	}
	// The session ended as the revoke returned; its tunnel is torn down
	// by the goroutine watching the session's context, within 1 s.
	for deadline := time.Now().Add(time.Second); tg.g.WireGuard().Enrolled(s.ID) && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if tg.g.WireGuard().Enrolled(s.ID) {
		t.Error("peer still enrolled 1 s after Ctrl-C")
	}
	_, err := tg.g.WireGuard().Dial(context.Background(), s.ID, session.Need{Agent: "alice", Kind: session.Shell})
	if !errors.Is(err, session.ErrEnded) && !errors.Is(err, session.ErrNotActive) {
		t.Errorf("dial after Ctrl-C: got %v, want the session's end", err)
	}
}

// TestHelperPinsLinkFingerprint: without --ca, the fingerprint in the link
// is the only trust anchor; a wrong one is refused before anything is sent.
func TestHelperPinsLinkFingerprint(t *testing.T) {
	tg := newTestGateway(t)
	fp := sha256.Sum256(tg.keys.TLSCert.Certificate[0]) // the gateway's own certificate
	s, link := tg.newSession(t, "shell", 30*time.Minute)
	bad := link + "#sha256=" + strings.Repeat("00", 32)
	h := startHelper(t, context.Background(), tg, bad, strings.NewReader(""), "--yes")
	if code := h.exit(t, 20*time.Second); code != 1 || !strings.Contains(h.errOut.String(), "fingerprint") {
		t.Errorf("wrong pin: exit %d, %s", code, h.errOut)
	}
	h = startHelper(t, context.Background(), tg, link+"#sha256="+hex.EncodeToString(fp[:]), strings.NewReader(""), "--yes")
	h.waitFor(t, "Connected:")
	if !tg.g.WireGuard().Enrolled(s.ID) {
		t.Error("pinned helper did not enroll")
	}
	tg.g.Broker().Revoke(context.Background(), s.ID, session.Actor{Name: "alice", Role: "agent"})
	h.exit(t, time.Second)
}

// browser is the customer's browser on a consent link: opening the link
// bound it, and it acts on the consent API with its cookie and CSRF token.
type browser struct {
	t    *testing.T
	hc   *http.Client
	api  string
	view struct {
		CSRF    string `json:"csrf_token"`
		Handoff struct {
			Link, Command string
		}
	}
}

func openBrowser(t *testing.T, tg *testGateway, link string) *browser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	pool := x509.NewCertPool()
	pool.AddCert(tg.keys.CA)
	b := &browser{t: t, api: tg.url + "/api/v1/consent/" + link[strings.LastIndex(link, "/")+1:],
		hc: &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}
	resp, err := b.hc.Get(b.api)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&b.view)
	resp.Body.Close()
	return b
}

func (b *browser) post(path, body string) int {
	b.t.Helper()
	req, _ := http.NewRequest("POST", b.api+path, strings.NewReader(body))
	req.Header.Set("X-CSRF-Token", b.view.CSRF)
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(&b.view)
	return resp.StatusCode
}

// approveAndHandoff approves scopes (a JSON array) in the browser and
// returns the handoff link of the command the page shows.
func (b *browser) approveAndHandoff(scopes string) string {
	b.t.Helper()
	if code := b.post("/approve", `{"scopes":`+scopes+`}`); code != 200 {
		b.t.Fatalf("approve: HTTP %d", code)
	}
	if code := b.post("/handoff", ""); code != 200 || b.view.Handoff.Link == "" {
		b.t.Fatalf("handoff: HTTP %d, link %q", code, b.view.Handoff.Link)
	}
	return b.view.Handoff.Link
}

// TestHelperAfterBrowserApproval: the customer approved in the browser,
// which the link is bound to; the page's handoff command brings in the
// helper, which pins the gateway by the link's fingerprint, asks the
// customer once more on its own terminal, enrolls, and can end the session
// itself. Without the code the helper is refused.
func TestHelperAfterBrowserApproval(t *testing.T) {
	tg := newTestGateway(t)
	s, link := tg.newSession(t, "shell,tunnel:8080", 30*time.Minute)

	// The browser: open (binds the link), approve, ask for the handoff.
	b := openBrowser(t, tg, link)

	// Before approval there is nothing to hand off.
	if code := b.post("/handoff", ""); code != http.StatusConflict {
		t.Fatalf("handoff before approval: HTTP %d, want 409", code)
	}
	if code := b.post("/approve", `{"scopes":["shell","tunnel:8080"]}`); code != 200 {
		t.Fatalf("approve: HTTP %d", code)
	}

	// The helper with the plain link is another client: refused.
	h := startHelper(t, context.Background(), tg, link, strings.NewReader(""), "--yes")
	if code := h.exit(t, 20*time.Second); code != 1 || !strings.Contains(h.errOut.String(), "another") {
		t.Fatalf("helper without a handoff code: exit %d, %s", code, h.errOut)
	}
	// It says what to do (before: only the gateway's "already bound to
	// another client").
	if !strings.Contains(h.errOut.String(), `"Show the command"`) {
		t.Errorf("helper without a handoff code does not say what to do: %s", h.errOut)
	}

	if code := b.post("/handoff", ""); code != 200 || !strings.HasPrefix(b.view.Handoff.Command, "supportgate-assist '"+link+"#sha256=") {
		t.Fatalf("handoff: HTTP %d, command %q", code, b.view.Handoff.Command)
	}
	h = startHelper(t, context.Background(), tg, b.view.Handoff.Link, terminal(t, "y\n"))
	h.waitFor(t, "Connected:")
	if !strings.Contains(h.out.String(), "already approved on the web page") || !tg.g.WireGuard().Enrolled(s.ID) {
		t.Fatalf("helper did not ask, then enroll:\n%s", h.out)
	}
	// The code is spent: a second helper with the same command is refused.
	h2 := startHelper(t, context.Background(), tg, b.view.Handoff.Link, terminal(t, "y\n"))
	if code := h2.exit(t, 20*time.Second); code != 1 || !strings.Contains(h2.errOut.String(), "another") ||
		!strings.Contains(h2.errOut.String(), "ask for a new one") {
		t.Errorf("second helper with a spent code: exit %d, %s", code, h2.errOut)
	}

	// The browser still acts for the customer too: it revokes, and the
	// helper ends.
	if code := b.post("/revoke", ""); code != 200 {
		t.Fatalf("browser revoke: HTTP %d", code)
	}
	if code := h.exit(t, 5*time.Second); code != 0 {
		t.Errorf("helper after revoke: exit %d\n%s%s", code, h.out, h.errOut)
	}
}

// TestHelperAsksAfterWebApproval: whoever opened the link first approved
// it on the web page, perhaps the agent themselves, and handed the
// customer the helper command. The helper connects only on the customer's
// own y, typed on its terminal, after saying who asks for what and that
// the approval came from the web page; anything else ends the session
// without enrolling.
func TestHelperAsksAfterWebApproval(t *testing.T) {
	tg := newTestGateway(t)
	for _, tc := range []struct {
		name   string
		stdin  func(t *testing.T) *os.File
		args   []string
		exit   int
		joined bool   // the helper claimed the handoff code
		state  string // the session's state afterwards
		say    string // in stdout, or stderr when exit != 0
	}{
		{name: "y", stdin: func(t *testing.T) *os.File { return terminal(t, "y\n") },
			exit: 0, joined: true, state: "active", say: "Connected:"},
		{name: "n", stdin: func(t *testing.T) *os.File { return terminal(t, "n\n") },
			exit: 0, joined: true, state: "ended", say: "you refused the session"},
		// An empty line asks again (TestHelperStrayEnter); what follows
		// it is the answer.
		{name: "enter, n", stdin: func(t *testing.T) *os.File { return terminal(t, "\nn\n") },
			exit: 0, joined: true, state: "ended", say: "you refused the session"},
		{name: "no terminal", stdin: func(t *testing.T) *os.File { return pipe(t, "y\n") },
			exit: 1, joined: false, state: "active", say: "not a terminal"},
		// --yes never skips the question for a session approved on the
		// web page: an agent could hand the command over with it added.
		{name: "no terminal, --yes", stdin: func(t *testing.T) *os.File { return pipe(t, "") }, args: []string{"--yes"},
			exit: 1, joined: false, state: "active", say: "not a terminal"},
		{name: "--yes, n", stdin: func(t *testing.T) *os.File { return terminal(t, "n\n") }, args: []string{"--yes"},
			exit: 0, joined: true, state: "ended", say: "you refused the session"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, link := tg.newSession(t, "shell,tunnel:8080", 30*time.Minute)
			handoff := openBrowser(t, tg, link).approveAndHandoff(`["shell","tunnel:8080"]`)
			h := startHelper(t, context.Background(), tg, handoff, tc.stdin(t), tc.args...)
			if tc.state == "active" && tc.exit == 0 {
				h.waitFor(t, tc.say)
				defer func() {
					tg.g.Broker().Revoke(context.Background(), s.ID, session.Actor{Name: "alice", Role: "agent"})
					h.exit(t, 5*time.Second)
				}()
			} else if code := h.exit(t, 20*time.Second); code != tc.exit {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.exit, h.out, h.errOut)
			}
			said := h.out.String()
			if tc.exit != 0 {
				said = h.errOut.String()
				if n := strings.Count(strings.TrimSpace(said), "\n"); n != 0 {
					t.Errorf("error takes %d lines, want 1:\n%s", n+1, said)
				}
			}
			if !strings.Contains(said, tc.say) {
				t.Errorf("helper did not say %q:\n%s%s", tc.say, h.out, h.errOut)
			}
			if got, want := tg.g.WireGuard().Enrolled(s.ID), tc.state == "active" && tc.joined; got != want {
				t.Errorf("enrolled %v, want %v\n%s", got, want, h.out)
			}
			got, _ := tg.g.Broker().Get(context.Background(), s.ID)
			if string(got.State) != tc.state {
				t.Errorf("session %s/%s, want %s", got.State, got.EndReason, tc.state)
			}
			if tc.state == "ended" && got.EndReason != session.EndRevoked {
				t.Errorf("session ended %s, want revoked by the customer", got.EndReason)
			}
			if claimed := got.HelperHash != [32]byte{}; claimed != tc.joined {
				t.Errorf("handoff claimed %v, want %v", claimed, tc.joined)
			}
			if !tc.joined {
				return
			}
			// The prompt names who asks and what for, and why to say no.
			for _, want := range []string{"ACME Support asks", "Alice Agent", s.VerificationCode, "shell, tunnel:8080", "30m0s",
				"already approved on the web page", "If you did not approve it yourself", "answer n and call support back",
				"Allow Alice Agent to use shell, tunnel:8080 on this machine? [y/N]"} {
				if tc.args == nil && !strings.Contains(h.out.String(), want) {
					t.Errorf("prompt lacks %q:\n%s", want, h.out)
				}
			}
		})
	}
}

// TestHelperRefusesWithoutTerminal: with stdin not a terminal and no
// --yes, the helper says so and stops before it opens the link, which
// stays free for the customer's browser or a helper in a terminal.
func TestHelperRefusesWithoutTerminal(t *testing.T) {
	tg := newTestGateway(t)
	s, link := tg.newSession(t, "shell", 30*time.Minute)
	for _, stdin := range []io.Reader{pipe(t, "y\n"), strings.NewReader("y\n")} {
		h := startHelper(t, context.Background(), tg, link, stdin)
		if code := h.exit(t, 20*time.Second); code != 1 || !strings.Contains(h.errOut.String(), "not a terminal") {
			t.Fatalf("exit %d, want 1 and a reason\n%s%s", code, h.out, h.errOut)
		}
	}
	got, _ := tg.g.Broker().Get(context.Background(), s.ID)
	if got.State != session.Requested || got.ClientHash != ([32]byte{}) || tg.g.WireGuard().Enrolled(s.ID) {
		t.Errorf("session %s, bound %v, enrolled %v; want requested, unbound, not enrolled",
			got.State, got.ClientHash != [32]byte{}, tg.g.WireGuard().Enrolled(s.ID))
	}
}

// TestConfirmShowsExtendedBox checks that a session extended before the
// helper joins it shows its whole time box: before, "for: 30m0s, until
// 02:01:59 (44m35s left)" gave the first ask beside the extended end.
func TestConfirmShowsExtendedBox(t *testing.T) {
	approved := time.Now().Add(-time.Minute)
	expires := approved.Add(45 * time.Minute)
	v := assist.View{Duration: "30m0s", State: "active", Scopes: []string{"shell"}, ApprovedAt: &approved, ExpiresAt: &expires}
	var out bytes.Buffer
	if _, ok := confirm(context.Background(), v, true, strings.NewReader(""), &out); !ok {
		t.Fatalf("confirm with --yes said no:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "for:               45m0s, until") {
		t.Errorf("confirm shows:\n%s\nwant the 45m0s time box", out.String())
	}
}
