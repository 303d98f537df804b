package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"supportgate/internal/realpeer"
	"supportgate/internal/syncbuf"
)

// The end-to-end tests drive the real binary through the contract of
// DESIGN.md section 4: serve, admin user add, login with a code from
// oathtool, session new, consent through the customer API, and the ways a
// session ends. They need the binary built once per test run.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func gatewayBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "supportgate-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "supportgate")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// gw is a running `supportgate serve`.
type gw struct {
	t        *testing.T
	bin      string
	data     string
	config   string
	addr     string
	sshAddr  string // the SSH bastion's, fixed across restarts
	wgAddr   string // the WireGuard hub's UDP address, fixed across restarts
	url      string
	cmd      *exec.Cmd
	stderr   *syncbuf.Buffer
	oathtool string
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func freeUDPPort(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

func newGW(t *testing.T, policy string) *gw {
	t.Helper()
	g := &gw{t: t, bin: gatewayBinary(t), data: filepath.Join(t.TempDir(), "data"), oathtool: realpeer.Require(t, "oathtool")}
	g.config = filepath.Join(t.TempDir(), "config.json")
	cfg := `{"org": "ACME Support", "policy": ` + policy + `, "detect": {"enabled": true}}`
	if err := os.WriteFile(g.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	g.addr = freePort(t)
	g.sshAddr = freePort(t)
	g.wgAddr = freeUDPPort(t)
	_, port, _ := net.SplitHostPort(g.addr)
	g.url = "https://localhost:" + port
	g.start()
	t.Cleanup(g.kill)
	return g
}

var listeningRE = regexp.MustCompile(`listening on https://(\S+)`)

func (g *gw) start() {
	g.t.Helper()
	g.stderr = &syncbuf.Buffer{}
	g.cmd = exec.Command(g.bin, "serve", "--data", g.data, "--config", g.config, "--http-addr", g.addr, "--public-url", g.url, "--wg-addr", g.wgAddr, "--ssh-addr", g.sshAddr)
	g.cmd.Stderr = g.stderr
	if err := g.cmd.Start(); err != nil {
		g.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !listeningRE.MatchString(g.stderr.String()) {
		if time.Now().After(deadline) || g.cmd.ProcessState != nil {
			g.t.Fatalf("gateway did not start:\n%s", g.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (g *gw) kill() {
	if g.cmd != nil && g.cmd.Process != nil {
		g.cmd.Process.Signal(syscall.SIGKILL)
		g.cmd.Wait()
		g.cmd = nil
	}
}

// run runs the binary as a client with its own home directory and returns
// stdout; a non-zero exit fails the test unless wantFail.
func (g *gw) run(home, stdin string, args ...string) (string, string, int) {
	g.t.Helper()
	cmd := exec.Command(g.bin, args...)
	cmd.Env = append(os.Environ(), "SUPPORTGATE_HOME="+home)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		g.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func (g *gw) mustRun(home, stdin string, args ...string) string {
	g.t.Helper()
	out, errs, code := g.run(home, stdin, args...)
	if code != 0 {
		g.t.Fatalf("supportgate %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

const password = "correct horse battery staple"

// user adds an account with the CLI, logs it in with a TOTP code from
// oathtool, and returns its home directory.
func (g *gw) user(name, role string) string {
	g.t.Helper()
	return g.teamUser(name, role, "")
}

// account adds an account with the CLI, with the password of the tests,
// and returns its otpauth:// URI.
func (g *gw) account(name, role, team string) string {
	g.t.Helper()
	totpFile := filepath.Join(g.t.TempDir(), name+".totp")
	g.mustRun("", password+"\n", "admin", "user", "add", "--data", g.data, "--name", name, "--role", role,
		"--team", team, "--password-stdin", "--totp-secret-file", totpFile)
	uri, err := os.ReadFile(totpFile)
	if err != nil {
		g.t.Fatal(err)
	}
	return string(uri)
}

// teamUser is user in a team.
func (g *gw) teamUser(name, role, team string) string {
	g.t.Helper()
	uri := g.account(name, role, team)
	m := regexp.MustCompile(`secret=([A-Z2-7]+)`).FindStringSubmatch(uri)
	if m == nil {
		g.t.Fatalf("no secret in %q", uri)
	}
	code, err := exec.Command(g.oathtool, "--totp", "-b", string(m[1])).Output()
	if err != nil {
		g.t.Fatalf("oathtool: %v", err)
	}
	home := filepath.Join(g.t.TempDir(), name+"-home")
	g.mustRun(home, password+"\n", "login", "--gateway", g.url, "--ca", filepath.Join(g.data, "ca.pem"),
		"--user", name, "--password-stdin", "--totp", strings.TrimSpace(string(code)))
	return home
}

type newSessionJSON struct {
	ID               string    `json:"id"`
	State            string    `json:"state"`
	ConsentURL       string    `json:"consent_url"`
	VerificationCode string    `json:"verification_code"`
	ConsentExpiresAt time.Time `json:"consent_expires_at"`
}

type showJSON struct {
	ID         string     `json:"id"`
	State      string     `json:"state"`
	EndReason  string     `json:"end_reason"`
	Agent      string     `json:"agent"`
	Customer   string     `json:"customer"`
	Scopes     []string   `json:"scopes"`
	ApprovedAt *time.Time `json:"approved_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	EndedAt    *time.Time `json:"ended_at"`
}

func (g *gw) newSession(home, scopes, dur string) newSessionJSON {
	g.t.Helper()
	out := g.mustRun(home, "", "session", "new", "--customer", "Bob at ACME", "--scope", scopes, "--duration", dur, "--reason", "ticket 42", "--json")
	var s newSessionJSON
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		g.t.Fatalf("session new --json: %v: %s", err, out)
	}
	if s.State != "requested" || len(s.VerificationCode) != 6 || !strings.HasPrefix(s.ConsentURL, g.url+"/c/") {
		g.t.Fatalf("session new: %+v", s)
	}
	return s
}

func (g *gw) show(home, id string) showJSON {
	g.t.Helper()
	out := g.mustRun(home, "", "session", "show", id, "--json")
	var s showJSON
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		g.t.Fatalf("session show --json: %v: %s", err, out)
	}
	return s
}

// waitEnded polls until the session ends, for at most limit.
func (g *gw) waitEnded(home, id string, limit time.Duration) showJSON {
	g.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		s := g.show(home, id)
		if s.State == "ended" || time.Now().After(deadline) {
			return s
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// browser is a customer's browser profile on the consent API.
type browser struct {
	g    *gw
	c    *http.Client
	url  string
	csrf string
}

func (g *gw) browser(consentURL string) *browser {
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(filepath.Join(g.data, "ca.pem"))
	if err != nil {
		g.t.Fatal(err)
	}
	pool.AppendCertsFromPEM(ca)
	jar, _ := cookiejar.New(nil)
	tok := consentURL[strings.LastIndex(consentURL, "/")+1:]
	return &browser{g: g, url: g.url + "/api/v1/consent/" + tok, c: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}
}

func (b *browser) open() (int, map[string]any) {
	resp, err := b.c.Get(b.url)
	if err != nil {
		b.g.t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	json.NewDecoder(resp.Body).Decode(&v)
	if s, _ := v["csrf_token"].(string); s != "" {
		b.csrf = s
	}
	return resp.StatusCode, v
}

func (b *browser) post(action, body string) (int, map[string]any) {
	req, _ := http.NewRequest("POST", b.url+"/"+action, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", b.csrf)
	resp, err := b.c.Do(req)
	if err != nil {
		b.g.t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	json.NewDecoder(resp.Body).Decode(&v)
	return resp.StatusCode, v
}

func (b *browser) approve(scopes string) {
	b.g.t.Helper()
	if code, v := b.open(); code != 200 {
		b.g.t.Fatalf("consent GET: %d %v", code, v)
	}
	if code, v := b.post("approve", `{"scopes":`+scopes+`}`); code != 200 || v["state"] != "active" {
		b.g.t.Fatalf("approve: %d %v", code, v)
	}
}

// consent_ttl is short enough to watch a link expire, long enough that a loaded
// CI machine approves the other links in time.
const e2ePolicy = `{"min_duration": "1s", "consent_ttl": "10s"}`

func TestE2ELifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	g := newGW(t, e2ePolicy)
	if !strings.Contains(g.stderr.String(), "one-time admin enrollment link") {
		t.Fatalf("first run printed no enrollment link:\n%s", g.stderr.String())
	}
	alice := g.user("alice", "agent")
	root := g.user("root", "admin")

	t.Run("expires", func(t *testing.T) {
		s := g.newSession(alice, "view,chat,tunnel:80,443", "2s")
		b := g.browser(s.ConsentURL)
		code, v := b.open()
		if code != 200 || v["verification_code"] != s.VerificationCode || v["agent"].(map[string]any)["org"] != "ACME Support" {
			t.Fatalf("consent view: %d %v", code, v)
		}
		// A second browser is refused.
		if code, _ := g.browser(s.ConsentURL).open(); code != http.StatusForbidden {
			t.Fatalf("second browser: got %d, want 403", code)
		}
		if code, v := b.post("approve", `{"scopes":["view","tunnel:443"]}`); code != 200 {
			t.Fatalf("approve: %d %v", code, v)
		}
		got := g.show(alice, s.ID)
		if got.State != "active" || strings.Join(got.Scopes, ",") != "view,tunnel:443" || got.ApprovedAt == nil || got.ExpiresAt == nil {
			t.Fatalf("after approve: %+v", got)
		}
		got = g.waitEnded(alice, s.ID, 10*time.Second)
		if got.State != "ended" || got.EndReason != "expired" {
			t.Fatalf("after the deadline: %s/%s, want ended/expired", got.State, got.EndReason)
		}
		if late := got.EndedAt.Sub(*got.ExpiresAt); late < 0 || late > time.Second {
			t.Errorf("ended %v after the deadline, want within 1s", late)
		}
		if code, _ := b.post("approve", `{"scopes":["view"]}`); code != http.StatusConflict {
			t.Fatalf("approve after the end: got %d, want 409", code)
		}
	})
	t.Run("deny", func(t *testing.T) {
		s := g.newSession(alice, "view", "1m")
		b := g.browser(s.ConsentURL)
		b.open()
		if code, _ := b.post("deny", ""); code != 200 {
			t.Fatalf("deny: %d", code)
		}
		if got := g.show(alice, s.ID); got.State != "ended" || got.EndReason != "denied" {
			t.Fatalf("got %s/%s, want ended/denied", got.State, got.EndReason)
		}
	})
	t.Run("revoke", func(t *testing.T) {
		s := g.newSession(alice, "view", "1m")
		g.browser(s.ConsentURL).approve(`["view"]`)
		g.mustRun(alice, "", "session", "revoke", s.ID)
		if got := g.show(alice, s.ID); got.State != "ended" || got.EndReason != "revoked" {
			t.Fatalf("got %s/%s, want ended/revoked", got.State, got.EndReason)
		}
		_, errs, code := g.run(alice, "", "session", "revoke", s.ID)
		if code == 0 || !strings.HasPrefix(errs, "supportgate: ") || strings.Count(errs, "\n") != 1 {
			t.Fatalf("second revoke: exit %d, stderr %q; want one line and a non-zero exit", code, errs)
		}
	})
	t.Run("link expiry", func(t *testing.T) {
		s := g.newSession(alice, "view", "1m")
		got := g.waitEnded(alice, s.ID, 30*time.Second)
		if got.State != "ended" || got.EndReason != "link_expired" {
			t.Fatalf("got %s/%s, want ended/link_expired", got.State, got.EndReason)
		}
		b := g.browser(s.ConsentURL)
		b.open()
		if code, _ := b.post("approve", `{"scopes":["view"]}`); code < 400 {
			t.Fatalf("approve of an expired link: got %d", code)
		}
	})
	t.Run("lock", func(t *testing.T) {
		s1 := g.newSession(alice, "view", "1m")
		g.browser(s1.ConsentURL).approve(`["view"]`)
		s2 := g.newSession(alice, "chat", "1m")
		out := g.mustRun(root, "", "admin", "user", "lock", "alice")
		if !strings.Contains(out, "ended 2") {
			t.Fatalf("lock: %q", out)
		}
		aud := g.user("audrey", "auditor")
		for _, id := range []string{s1.ID, s2.ID} {
			if got := g.show(aud, id); got.State != "ended" || got.EndReason != "locked" {
				t.Fatalf("%s: got %s/%s, want ended/locked", id, got.State, got.EndReason)
			}
		}
		// The locked agent's token no longer works.
		if _, errs, code := g.run(alice, "", "session", "list"); code == 0 || !strings.Contains(errs, "token") {
			t.Fatalf("locked agent listing: exit %d %q", code, errs)
		}
	})
	t.Run("bad input", func(t *testing.T) {
		for _, args := range [][]string{
			{"session", "new", "--customer", "x", "--scope", "root", "--duration", "1m"},
			{"session", "new", "--customer", "x", "--scope", "view", "--duration", "9h"},
			{"session", "show"},
			{"session", "frobnicate"},
			{"nosuchcommand"},
		} {
			_, errs, code := g.run(root, "", args...)
			if code == 0 || !strings.HasPrefix(errs, "supportgate: ") || strings.Count(errs, "\n") != 1 {
				t.Errorf("%v: exit %d, stderr %q; want one line and a non-zero exit", args, code, errs)
			}
		}
	})
	out := g.mustRun("", "", "audit", "verify", "--data", g.data)
	if !strings.Contains(out, "intact") {
		t.Fatalf("audit verify: %q", out)
	}
	export := g.mustRun("", "", "audit", "export", "--data", g.data)
	for _, want := range []string{`"login.success"`, `"session.approved"`, `"consent.viewed"`, `"user.locked"`, `"reason":"link_expired"`} {
		if !strings.Contains(export, want) {
			t.Errorf("audit export lacks %s", want)
		}
	}
	for _, secret := range []string{password, "sgt_", "sgc_"} {
		if strings.Contains(export, secret) || strings.Contains(g.stderr.String(), secret) {
			t.Errorf("a secret (%q...) reached the audit log or the server log", secret[:4])
		}
	}
}

// TestE2ECrashRestart kills the gateway with SIGKILL while sessions are
// active, restarts it, and checks that they still end on time, spent
// tokens stay spent and the audit log verifies.
func TestE2ECrashRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	g := newGW(t, `{"min_duration": "1s"}`)
	alice := g.user("alice", "agent")

	early := g.newSession(alice, "view", "2s") // ends while the gateway is down
	g.browser(early.ConsentURL).approve(`["view"]`)
	late := g.newSession(alice, "view", "6s") // ends after the restart
	bl := g.browser(late.ConsentURL)
	bl.approve(`["view"]`)
	waiting := g.newSession(alice, "chat", "1m") // still awaiting consent
	lateShown := g.show(alice, late.ID)

	g.kill()
	time.Sleep(3 * time.Second)
	g.start()

	if got := g.show(alice, early.ID); got.State != "ended" || got.EndReason != "expired" {
		t.Fatalf("session due during the outage: %s/%s, want ended/expired", got.State, got.EndReason)
	}
	if got := g.show(alice, late.ID); got.State != "active" {
		t.Fatalf("session due after the restart: %s, want still active", got.State)
	}
	got := g.waitEnded(alice, late.ID, 15*time.Second)
	if got.EndReason != "expired" || !got.ExpiresAt.Equal(*lateShown.ExpiresAt) {
		t.Fatalf("after restart: %s at %v, want expired at %v", got.EndReason, got.EndedAt, lateShown.ExpiresAt)
	}
	if lateBy := got.EndedAt.Sub(*got.ExpiresAt); lateBy < 0 || lateBy > time.Second {
		t.Errorf("ended %v after its deadline, want within 1s", lateBy)
	}
	// The spent token of the approved session stays spent.
	if code, _ := bl.post("approve", `{"scopes":["view"]}`); code != http.StatusConflict {
		t.Fatalf("reusing a spent token: got %d, want 409", code)
	}
	// The waiting link is still approvable once, by its own browser only.
	if code, _ := g.browser(waiting.ConsentURL).open(); code != 200 {
		t.Fatalf("waiting link after restart: %d", code)
	}
	out := g.mustRun("", "", "audit", "verify", "--data", g.data)
	if !strings.Contains(out, "intact") {
		t.Fatalf("audit verify after SIGKILL: %q", out)
	}
	g.kill()
	tamperAuditAndVerify(t, g)
}

// tamperAuditAndVerify edits one audit record in the database with the
// sqlite3-compatible driver and checks that audit verify names it.
func tamperAuditAndVerify(t *testing.T, g *gw) {
	t.Helper()
	export := g.mustRun("", "", "audit", "export", "--data", g.data)
	sc := bufio.NewScanner(strings.NewReader(export))
	n := 0
	for sc.Scan() {
		n++
	}
	if n < 5 {
		t.Fatalf("only %d audit records", n)
	}
	if err := editAuditRecord(filepath.Join(g.data, "supportgate.db"), 3); err != nil {
		t.Fatal(err)
	}
	_, errs, code := g.run("", "", "audit", "verify", "--data", g.data)
	if code != 1 || !strings.Contains(errs, "record 3") {
		t.Fatalf("verify after editing record 3: exit %d, %q", code, errs)
	}
}

// editAuditRecord changes the actor of one audit record behind the
// gateway's back, as someone with access to the database file would.
func editAuditRecord(dbPath string, seq int) error {
	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	res, err := db.Exec(`UPDATE audit_records SET actor = 'mallory' WHERE seq = ?`, seq)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("edited %d rows", n)
	}
	return nil
}
