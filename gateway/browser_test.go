package gateway_test

import (
	"context"
	"crypto/x509"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"supportgate/gateway"
	"supportgate/gateway/browsertest"
	"supportgate/gateway/identity"
	"supportgate/internal/realpeer"
	"supportgate/session"
)

// The browser tests drive the pages in real headless Chromium against a
// gateway on the real clock behind real TLS. Each browser profile is its
// own Chromium process that trusts exactly the gateway's certificate.

var updateScreenshots = flag.Bool("update-screenshots", false, "write docs/screenshots/*.png from the browser tests")

const screenshotDir = "../docs/screenshots"

// webEnv is a gateway for browsers: real clock, sessions as short as a
// second, and the SPKI pin of its certificate.
type webEnv struct {
	*env
	pin string
}

func newWebEnv(t *testing.T) *webEnv { return newWebEnvWith(t, nil) }

// newWebEnvWith is newEnvWith on the real clock (browsers keep their own
// time) with second-long sessions allowed, and the certificate pin that
// the browser profiles trust.
func newWebEnvWith(t *testing.T, adjust func(*gateway.Config)) *webEnv {
	t.Helper()
	realpeer.Require(t, "chromium")
	e := newEnvWith(t, func(c *gateway.Config) {
		c.Clock = nil
		c.Policy = session.Policy{MinDuration: time.Second, MaxOpenPerAgent: 100}
		if adjust != nil {
			adjust(c)
		}
	})
	leaf, err := x509.ParseCertificate(e.mat.TLSCert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return &webEnv{env: e, pin: browsertest.SPKIPin(leaf)}
}

// staff creates an enrolled account and returns its TOTP secret.
func (w *webEnv) staff(name, display string, role identity.Role, team string) []byte {
	w.t.Helper()
	a, err := w.g.Accounts().Create(context.Background(), gateway.NewUser{
		Name: name, DisplayName: display, Role: role, Team: team, Password: testPassword})
	if err != nil {
		w.t.Fatal(err)
	}
	return a.User.TOTPSecret
}

func (w *webEnv) browser() *browsertest.Profile { return browsertest.New(w.t, w.pin) }

// signIn opens the console in p and signs in with password and code.
func (w *webEnv) signIn(p *browsertest.Profile, name, code string) {
	w.t.Helper()
	p.Do(
		chromedp.Navigate(w.srv.URL+"/console"),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SetValue(chromedp.CSS("#login-user"), name),
		chromedp.SetValue(chromedp.CSS("#login-password"), testPassword),
		chromedp.SendKeys(chromedp.CSS("#login-totp"), code), // typed, as a person would
		chromedp.Click(chromedp.CSS("#login-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#whoami")),
	)
}

func row(id, state string) chromedp.CSS {
	return chromedp.CSS(fmt.Sprintf(`#session-rows tr[data-id=%q][data-state=%q]`, id, state))
}

// TestBrowserConsent is the customer's journey against a live console: the
// agent asks, the customer checks who asks, unticks a scope and approves;
// the console follows without a reload; the agent asks for more time and
// the customer allows it; a second browser with the same link is refused,
// and as the team supervisor's console sees the session; the customer
// presses Stop and both consoles show the end within a second.
func TestBrowserConsent(t *testing.T) {
	t.Parallel()
	w := newWebEnv(t)
	secret := w.staff("alice", "Alice Example", identity.RoleAgent, "red")
	samSecret := w.staff("sam", "Sam Super", identity.RoleSupervisor, "red")

	// Start the three browsers at once; each is a separate profile.
	ch := make(chan *browsertest.Profile, 3)
	for range 3 {
		go func() { ch <- browsertest.New(t, w.pin) }()
	}
	agentB, customerB, otherB := <-ch, <-ch, <-ch
	if agentB == nil || customerB == nil || otherB == nil {
		t.Fatal("a browser did not start")
	}

	w.signIn(agentB, "alice", identity.TOTPCode(secret, time.Now()))
	agentB.Do(
		chromedp.WaitVisible(chromedp.CSS("#new-form")),
		chromedp.SetValue(chromedp.CSS("#new-customer"), "Bob at ACME Ltd"),
		chromedp.Click(chromedp.CSS("#new-shell")),
		chromedp.SetValue(chromedp.CSS("#new-reason"), "printer queue stuck"),
		chromedp.Click(chromedp.CSS("#new-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#created")),
	)
	link := agentB.Value("#created-link")
	code := agentB.Text("#created-code")
	if !strings.HasPrefix(link, w.srv.URL+"/c/") || len(code) != 6 {
		t.Fatalf("console shows link %q code %q", link, code)
	}
	ss, err := w.g.Broker().List(context.Background(), session.Filter{Agent: "alice"})
	if err != nil || len(ss) != 1 {
		t.Fatalf("sessions of alice: %v %v", ss, err)
	}
	id := ss[0].ID
	agentB.Do(chromedp.WaitVisible(row(id, "requested")))

	customerB.Do(
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.CSS("#request")),
	)
	for sel, want := range map[string]string{
		"#org": "ACME Support", "#agent": "Alice Example", "#code": code, "#reason": "printer queue stuck",
		"#duration": "30 minutes",
	} {
		if got := customerB.Text(sel); got != want {
			t.Errorf("consent page %s: got %q, want %q", sel, got, want)
		}
	}
	if got := customerB.Text("#scopes"); !strings.Contains(got, "See your screen") || !strings.Contains(got, "Type commands") {
		t.Errorf("scopes read %q, want plain words for view and shell", got)
	}
	if got := customerB.Text("#request"); !strings.Contains(got, "This session is recorded") {
		t.Errorf("consent page does not say the session is recorded: %q", got)
	}
	customerB.Screenshot(filepath.Join(screenshotDir, "consent-desktop.png"), *updateScreenshots)
	customerB.Do(browsertest.Phone())
	if wide := browsertest.Eval[bool](customerB, `document.documentElement.scrollWidth > window.innerWidth`); wide {
		t.Errorf("consent page scrolls sideways at phone width")
	}
	customerB.Screenshot(filepath.Join(screenshotDir, "consent-phone.png"), *updateScreenshots)

	// The customer refuses the shell and approves the rest.
	customerB.Do(
		chromedp.Click(chromedp.CSS(`#scopes input[value="shell"]`)),
		chromedp.Click(chromedp.CSS("#approve")),
		chromedp.WaitVisible(chromedp.CSS("#live")),
	)
	if got := customerB.Text("#granted"); strings.Contains(got, "commands") || !strings.Contains(got, "screen") {
		t.Errorf("live view grants %q, want view and chat without shell", got)
	}
	if got := customerB.Text("#connected"); !strings.Contains(got, "Alice Example") {
		t.Errorf("live view says %q, want the agent's name", got)
	}
	if got := customerB.Text("#timeleft"); !strings.HasPrefix(got, "29:") && !strings.HasPrefix(got, "30:") {
		t.Errorf("time left %q, want about 30 minutes", got)
	}

	// The console follows without a reload.
	agentB.Do(chromedp.WaitVisible(row(id, "active")))
	if got := agentB.Text(`#session-rows tr[data-id="` + id + `"]`); !strings.Contains(got, "view, chat") || strings.Contains(got, "shell") {
		t.Errorf("console row %q, want scopes view, chat", got)
	}
	agentB.Screenshot(filepath.Join(screenshotDir, "console.png"), *updateScreenshots)

	// More time needs the customer's consent.
	agentB.Do(chromedp.Click(chromedp.CSS(`#session-rows tr[data-id="` + id + `"] button.extend`)))
	customerB.Do(chromedp.WaitVisible(chromedp.CSS("#extension")))
	if got := customerB.Text("#ext-text"); !strings.Contains(got, "15 minutes") {
		t.Errorf("extension prompt %q, want 15 minutes", got)
	}
	customerB.Screenshot(filepath.Join(screenshotDir, "consent-extension-phone.png"), *updateScreenshots)
	customerB.Do(
		chromedp.Click(chromedp.CSS("#ext-yes")),
		chromedp.WaitNotVisible(chromedp.CSS("#extension")),
	)
	if got := customerB.Text("#timeleft"); !strings.HasPrefix(got, "44:") && !strings.HasPrefix(got, "45:") {
		t.Errorf("time left after extension %q, want about 45 minutes", got)
	}

	// A second browser with the same link is refused.
	otherB.Do(
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.CSS("#problem")),
	)
	if got := otherB.Text("#problem"); !strings.Contains(got, "another browser") {
		t.Errorf("second browser reads %q, want a refusal", got)
	}
	if vis := browsertest.Eval[bool](otherB, `!document.getElementById("request").hidden || !document.getElementById("live").hidden`); vis {
		t.Errorf("second browser sees the request or the live session")
	}

	// The second profile is the team's supervisor's: the console shows
	// alice's live session with an End button.
	w.signIn(otherB, "sam", identity.TOTPCode(samSecret, time.Now()))
	otherB.Do(chromedp.WaitVisible(chromedp.CSS(`#session-rows tr[data-id="` + id + `"][data-state="active"] button.revoke`)))
	if got := otherB.Text("#sessions-h"); got != "Team sessions" {
		t.Errorf("supervisor's heading %q", got)
	}
	if got := otherB.Text(`#session-rows tr[data-id="` + id + `"] button.revoke`); got != "End session" {
		t.Errorf("supervisor's button reads %q, want End session", got)
	}

	// Stop ends it at once, and both consoles show it within a second.
	customerB.Do(chromedp.Click(chromedp.CSS("#stop")))
	stopped := time.Now()
	if err := otherB.Try(time.Second, chromedp.WaitVisible(row(id, "ended"))); err != nil {
		t.Errorf("supervisor's console did not show the end within 1s of Stop: %v", err)
	}
	if err := agentB.Try(time.Second-time.Since(stopped), chromedp.WaitVisible(row(id, "ended"))); err != nil {
		row := agentB.Text(`#session-rows tr[data-id="` + id + `"]`)
		s, _ := w.g.Broker().Get(context.Background(), id)
		t.Fatalf("console did not show the session ended within 1s of Stop: %v; row %q; note %q; session %s/%s",
			err, row, agentB.Text("#live-note"), s.State, s.EndReason)
	}
	t.Logf("console showed the end %v after Stop", time.Since(stopped).Round(time.Millisecond))
	customerB.Do(chromedp.WaitVisible(chromedp.CSS("#ended")))
	if got := customerB.Text("#ended-why"); got != "You stopped the session." {
		t.Errorf("ended page says %q", got)
	}
	s, err := w.g.Broker().Get(context.Background(), id)
	if err != nil || s.State != session.Ended || s.EndReason != session.EndRevoked {
		t.Fatalf("after Stop: %v %v", s, err)
	}
}

// TestBrowserConsentNotFramed: a page on another origin that frames the
// consent page gets nothing: the browser refuses to render it, so its
// script never runs and the link stays unbound.
func TestBrowserConsentNotFramed(t *testing.T) {
	t.Parallel()
	w := newWebEnv(t)
	_, token, err := w.g.Broker().Create(context.Background(),
		session.Actor{Name: "alice", Role: "agent"},
		session.NewRequest{Agent: "alice", AgentName: "Alice", Customer: "Bob", Scopes: session.Scopes{{Kind: session.View}}, Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	link := w.srv.URL + "/c/" + token
	evil := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(rw, `<!doctype html><title>framing</title><body>
<iframe id="f" src=%q width="600" height="400"></iframe>
<script>document.getElementById("f").addEventListener("load", () => { document.title = "loaded"; });</script>`, link)
	}))
	defer evil.Close()

	b := w.browser()
	b.Do(
		chromedp.Navigate(evil.URL),
		browsertest.Until(`document.title === "loaded"`),
	)
	// The frame holds Chromium's error page, not the consent page.
	frames := browsertest.Eval[[]string](b, `[...document.querySelectorAll("iframe")].map(f => { try { return f.contentDocument ? "same-origin:" + f.contentDocument.title : "no access" } catch (e) { return "blocked" } })`)
	t.Logf("frames seen from the framing page: %v", frames)
	tree, err := browsertest.Run(b, browsertest.Timeout, frameURLs())
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range tree {
		if strings.Contains(u, "/c/"+token) {
			t.Errorf("a frame of the framing page committed the consent page: %v", tree)
		}
	}
	// With site isolation the frame is a target of its own; what it holds
	// is Chromium's error page, with none of the consent page in it.
	if doc, ok := browsertest.EvalInTarget[string](b, "iframe", "/c/"+token,
		`location.href + " | " + document.title + " | " + (document.getElementById("request") ? "consent page" : "no consent page")`); ok {
		t.Logf("the frame's document: %s", doc)
		if !strings.HasPrefix(doc, "chrome-error:") || strings.Contains(doc, "consent page |") || !strings.HasSuffix(doc, "no consent page") {
			t.Errorf("the frame rendered %q, want Chromium's blocked-frame error page", doc)
		}
	}
	// Had the page run in the frame, it would have bound the link to this
	// browser; a fresh client can still open it.
	cu := w.customer(token)
	if code, v := cu.open(); code != http.StatusOK {
		t.Fatalf("opening the link after the framing attempt: got %d %v, want 200 (the frame must not have bound it)", code, v)
	}
}

// TestBrowserConsentEnds: the page says in plain words why a session
// ended: the customer denied, or the approved time ran out (a two-second
// session on the real clock, counted down to nothing).
func TestBrowserConsentEnds(t *testing.T) {
	t.Parallel()
	w := newWebEnv(t)
	create := func(d time.Duration) (string, string) {
		s, token, err := w.g.Broker().Create(context.Background(), session.Actor{Name: "alice", Role: "agent"},
			session.NewRequest{Agent: "alice", AgentName: "Alice", Customer: "Bob", Scopes: session.Scopes{{Kind: session.View}}, Duration: d})
		if err != nil {
			t.Fatal(err)
		}
		return s.ID, w.srv.URL + "/c/" + token
	}
	b := w.browser()

	_, denied := create(time.Minute)
	b.Do(
		chromedp.Navigate(denied),
		chromedp.WaitVisible(chromedp.CSS("#request")),
		chromedp.Click(chromedp.CSS("#deny")),
		chromedp.WaitVisible(chromedp.CSS("#ended")),
	)
	if got := b.Text("#ended-why"); !strings.Contains(got, "You denied the request") {
		t.Errorf("after Deny the page says %q", got)
	}

	// The agent withdraws a request the customer is reading: the page
	// must not say the customer denied it.
	wid, withdrawn := create(time.Minute)
	b.Do(
		chromedp.Navigate(withdrawn),
		chromedp.WaitVisible(chromedp.CSS("#request")),
	)
	if _, err := w.g.Broker().Revoke(context.Background(), wid, session.Actor{Name: "alice", Role: "agent"}); err != nil {
		t.Fatal(err)
	}
	b.Do(chromedp.WaitVisible(chromedp.CSS("#ended")))
	if got, want := b.Text("#ended-why"), "The request was withdrawn by the agent or their organisation. Nobody was given access."; got != want {
		t.Errorf("after the agent withdrew the request the page says %q, want %q", got, want)
	}

	id, short := create(2 * time.Second)
	b.Do(
		chromedp.Navigate(short),
		chromedp.WaitVisible(chromedp.CSS("#request")),
		chromedp.Click(chromedp.CSS("#approve")),
		chromedp.WaitVisible(chromedp.CSS("#live")),
	)
	if got := b.Text("#duration"); got != "2 seconds" {
		t.Errorf("duration reads %q, want 2 seconds", got)
	}
	b.Do(chromedp.WaitVisible(chromedp.CSS("#ended")))
	if got := b.Text("#ended-why"); got != "The time you allowed ran out." {
		t.Errorf("after the time box the page says %q", got)
	}
	if s, err := w.g.Broker().Get(context.Background(), id); err != nil || s.EndReason != session.EndExpired {
		t.Errorf("session after its time box: %+v %v", s, err)
	}
}

// TestBrowserEnrollAndSignIn: an admin adds a user in the console; the
// user opens the enrollment link, reads the secret, confirms a code from
// oathtool, signs in with the next code and sees their console. The admin
// then changes the role, locks and unlocks.
func TestBrowserEnrollAndSignIn(t *testing.T) {
	t.Parallel()
	oathtool := realpeer.Require(t, "oathtool")
	w := newWebEnv(t)
	rootSecret := w.staff("root", "Root Admin", identity.RoleAdmin, "")
	ch := make(chan *browsertest.Profile, 2)
	for range 2 {
		go func() { ch <- browsertest.New(t, w.pin) }()
	}
	adminB, userB := <-ch, <-ch

	w.signIn(adminB, "root", identity.TOTPCode(rootSecret, time.Now()))
	adminB.Do(
		chromedp.WaitVisible(chromedp.CSS("#user-form")),
		chromedp.SetValue(chromedp.CSS("#user-name"), "carol"),
		chromedp.SetValue(chromedp.CSS("#user-display"), "Carol Jones"),
		chromedp.SetValue(chromedp.CSS("#user-role"), "agent"),
		chromedp.SetValue(chromedp.CSS("#user-team"), "blue"),
		chromedp.Click(chromedp.CSS("#user-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#enroll-result")),
		chromedp.WaitVisible(chromedp.CSS(`#user-rows tr[data-user="carol"]`)),
	)
	enrollURL := adminB.Value("#enroll-link")
	if !strings.HasPrefix(enrollURL, w.srv.URL+"/enroll/") {
		t.Fatalf("enroll link %q", enrollURL)
	}
	adminB.Screenshot(filepath.Join(screenshotDir, "console-users.png"), *updateScreenshots)

	userB.Do(
		chromedp.Navigate(enrollURL),
		chromedp.WaitVisible(chromedp.CSS("#setup")),
		browsertest.Until(`document.getElementById("qr").complete && document.getElementById("qr").naturalWidth > 0`),
	)
	secret := strings.TrimSpace(userB.Text("#secret"))
	if secret == "" || !strings.HasPrefix(userB.Text("#otpauth"), "otpauth://totp/") {
		t.Fatalf("enrollment page shows secret %q", secret)
	}
	totp := func(at time.Time) string {
		out, err := exec.Command(oathtool, "--totp", "-b", "--now", at.UTC().Format("2006-01-02 15:04:05 UTC"), secret).Output()
		if err != nil {
			t.Fatalf("oathtool: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	userB.Do(
		chromedp.SetValue(chromedp.CSS("#password"), testPassword),
		chromedp.SetValue(chromedp.CSS("#password2"), testPassword),
		chromedp.SetValue(chromedp.CSS("#totp"), totp(time.Now())),
		chromedp.Click(chromedp.CSS("#enroll-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#done")),
		chromedp.WaitVisible(chromedp.CSS(`#to-console[href="/console"]`)),
	)
	// A code is accepted once: sign in with the next one (within the
	// gateway's one-step tolerance).
	w.signIn(userB, "carol", totp(time.Now().Add(30*time.Second)))
	if got := userB.Text("#whoami"); !strings.Contains(got, "Carol Jones") || !strings.Contains(got, "agent") {
		t.Errorf("console greets %q", got)
	}
	userB.Do(chromedp.WaitVisible(chromedp.CSS("#new-form")))

	// The admin makes carol a supervisor, then locks and unlocks her. Each
	// step waits for the row the console redraws from the gateway's answer.
	carol := `#user-rows tr[data-user="carol"]`
	adminB.Do(
		chromedp.Click(chromedp.CSS("#users-refresh")),
		chromedp.WaitVisible(chromedp.CSS(carol+`[data-status="active"]`)),
		chromedp.SetValue(chromedp.CSS(carol+` select.role`), "supervisor"),
		chromedp.Click(chromedp.CSS(carol+` button.set-role`)),
		chromedp.WaitVisible(chromedp.CSS(carol+`[data-role="supervisor"] button.lock`)),
		// A lock asks for a second click; the first locks nothing.
		chromedp.Click(chromedp.CSS(carol+` button.lock`)),
		chromedp.WaitVisible(chromedp.CSS(carol+` button.lock.armed`)),
	)
	if u, err := w.store.GetUser(context.Background(), "carol"); err != nil || u.Disabled {
		t.Fatalf("one click on Lock locked carol: %+v %v", u, err)
	}
	adminB.Do(
		chromedp.Click(chromedp.CSS(carol+` button.lock.armed`)),
		chromedp.WaitVisible(chromedp.CSS(carol+`[data-status="locked"] button.unlock`)),
	)
	if u, err := w.store.GetUser(context.Background(), "carol"); err != nil || u.Role != "supervisor" || !u.Disabled {
		t.Fatalf("carol after the admin's changes: %+v %v, want a locked supervisor", u, err)
	}
	// Locked, carol's browser session is gone: her console asks to sign in.
	userB.Do(chromedp.Navigate(w.srv.URL+"/console"), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	adminB.Do(
		chromedp.Click(chromedp.CSS(carol+` button.unlock`)),
		chromedp.WaitVisible(chromedp.CSS(carol+`[data-status="active"] button.lock`)),
	)

	// Five wrong passwords lock carol out for a while: the console says
	// so and its Unlock ends it.
	for range 5 {
		w.send(nil, nil, "POST", "/api/v1/login", map[string]string{"user": "carol", "password": "wrong horse", "totp": "000000"})
	}
	adminB.Do(
		chromedp.Click(chromedp.CSS("#users-refresh")),
		chromedp.WaitVisible(chromedp.CSS(carol+`[data-status="locked-out"] button.unlock`)),
	)
	if got := adminB.Text(carol + " td.status"); !strings.Contains(got, "locked out") {
		t.Errorf("a locked-out user's status reads %q", got)
	}
	adminB.Do(
		chromedp.Click(chromedp.CSS(carol+` button.unlock`)),
		chromedp.WaitVisible(chromedp.CSS(carol+`[data-status="active"]`)),
	)

	// carol lost her phone: the admin resets her sign-in and hands her the
	// new link, which enrolls a new secret.
	adminB.Do(
		chromedp.Click(chromedp.CSS(carol+` button.reenroll`)),
		chromedp.WaitVisible(chromedp.CSS(carol+` button.reenroll.armed`)),
		chromedp.Click(chromedp.CSS(carol+` button.reenroll.armed`)),
		chromedp.WaitVisible(chromedp.CSS(carol+`[data-status="pending"]`)),
	)
	link := adminB.Value("#enroll-link")
	if link == enrollURL || !strings.HasPrefix(link, w.srv.URL+"/enroll/") {
		t.Fatalf("link after the reset %q (first link %q)", link, enrollURL)
	}
	userB.Do(chromedp.Navigate(w.srv.URL+"/console"), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	userB.Do(
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.CSS("#setup")),
	)
	if s2 := strings.TrimSpace(userB.Text("#secret")); s2 == "" || s2 == secret {
		t.Fatalf("the reset kept the secret (%q, was %q)", s2, secret)
	} else {
		secret = s2
	}
	userB.Do(
		chromedp.SetValue(chromedp.CSS("#password"), testPassword),
		chromedp.SetValue(chromedp.CSS("#password2"), testPassword),
		chromedp.SetValue(chromedp.CSS("#totp"), totp(time.Now())),
		chromedp.Click(chromedp.CSS("#enroll-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#done")),
	)
	w.signIn(userB, "carol", totp(time.Now().Add(30*time.Second)))
	userB.Do(chromedp.WaitVisible(chromedp.CSS("#whoami")))
}

// frameURLs lists every frame of the tab as "url (unreachable: url)".
func frameURLs() chromedp.Action[[]string] {
	return func(ctx context.Context, tg *chromedp.Target) ([]string, error) {
		res, err := cdp.Call(ctx, tg, page.GetFrameTree, cdp.Empty{})
		if err != nil {
			return nil, err
		}
		var out []string
		var walk func(*page.FrameTree)
		walk = func(ft *page.FrameTree) {
			out = append(out, ft.Frame.URL+" (unreachable: "+ft.Frame.UnreachableURL+")")
			for _, c := range ft.ChildFrames {
				walk(c)
			}
		}
		walk(res.FrameTree)
		return out, nil
	}
}

// TestBrowserHelperHandoff: the customer approves a shell session in the
// browser and gets the one-time command for supportgate-assist, whose
// link pins the gateway's certificate and carries a code that binds the
// helper as the link's second client.
func TestBrowserHelperHandoff(t *testing.T) {
	t.Parallel()
	w := newWebEnv(t)
	s, token, err := w.g.Broker().Create(context.Background(), session.Actor{Name: "alice", Role: "agent"},
		session.NewRequest{Agent: "alice", AgentName: "Alice", Customer: "Bob",
			Scopes: session.Scopes{{Kind: session.Shell}}, Duration: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	link := w.srv.URL + "/c/" + token
	b := w.browser()
	b.Do(
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.CSS("#request")),
		chromedp.Click(chromedp.CSS("#approve")),
		chromedp.WaitVisible(chromedp.CSS("#helper")),
		chromedp.Click(chromedp.CSS("#helper-get")),
		chromedp.WaitVisible(chromedp.CSS("#helper-cmd")),
	)
	cmd := b.Value("#helper-line")
	if !strings.HasPrefix(cmd, "supportgate-assist '"+link+"#sha256=") || !strings.Contains(cmd, "&handoff=") {
		t.Fatalf("helper command %q", cmd)
	}
	code := cmd[strings.Index(cmd, "&handoff=")+len("&handoff=") : len(cmd)-1]

	// The helper's first request, with the code: bound, and it can act.
	req, _ := http.NewRequest("GET", w.srv.URL+"/api/v1/consent/"+token, nil)
	req.Header.Set("X-Handoff-Code", code)
	resp, err := w.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || len(resp.Cookies()) != 1 {
		t.Fatalf("helper with the code: %s, %d cookies", resp.Status, len(resp.Cookies()))
	}
	got, _ := w.g.Broker().Get(context.Background(), s.ID)
	if got.HelperHash == ([32]byte{}) || got.HandoffHash != ([32]byte{}) {
		t.Errorf("after the claim: helper bound %v, code pending %v", got.HelperHash != [32]byte{}, got.HandoffHash != [32]byte{})
	}
}

// keepSockets records every WebSocket the page opens in window.sgSockets,
// so that a test can drop them as a network blip would.
const keepSockets = `(() => {
  const Real = window.WebSocket;
  window.sgSockets = [];
  window.WebSocket = function (...args) { const s = new Real(...args); window.sgSockets.push(s); return s; };
  window.WebSocket.prototype = Real.prototype;
  Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
})();`

// TestBrowserConsentRedrawKeepsChoices: the consent page follows a request
// over its websocket and, when the connection drops, fetches the session
// again and redraws the request. The redraw must keep what the customer
// unticked: ticking a scope again behind their back would have them
// approve what they had refused.
func TestBrowserConsentRedrawKeepsChoices(t *testing.T) {
	t.Parallel()
	w := newWebEnv(t)
	s, token, err := w.g.Broker().Create(context.Background(), session.Actor{Name: "alice", Role: "agent"},
		session.NewRequest{Agent: "alice", AgentName: "Alice", Customer: "Bob",
			Scopes: session.Scopes{{Kind: session.View}, {Kind: session.Chat}}, Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	b := w.browser()
	b.Do(func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: keepSockets})
		return chromedp.Void{}, err
	})
	b.Do(
		chromedp.Navigate(w.srv.URL+"/c/"+token),
		chromedp.WaitVisible(chromedp.CSS("#request")),
		browsertest.Until(`window.sgSockets.length === 1 && window.sgSockets[0].readyState === 1`),
		chromedp.Click(chromedp.CSS(`#scopes input[value="chat"]`)),
		// Mark the drawn boxes: a redraw replaces them.
		browsertest.Until(`(document.querySelectorAll("#scopes input").forEach((b) => b.dataset.old = "1"), true)`),
		browsertest.Until(`(window.sgSockets[0].close(), true)`),
		browsertest.Until(`window.sgSockets.length === 2 && document.querySelectorAll("#scopes input[data-old]").length === 0`),
	)
	got := browsertest.Eval[[]string](b, `[...document.querySelectorAll("#scopes input:checked")].map((x) => x.value)`)
	if len(got) != 1 || got[0] != "view" {
		t.Fatalf("after the redraw the ticked scopes are %q, want only view", got)
	}
	b.Do(chromedp.Click(chromedp.CSS("#approve")), chromedp.WaitVisible(chromedp.CSS("#live")))
	if s, err := w.g.Broker().Get(context.Background(), s.ID); err != nil || s.Scopes.String() != "view" {
		t.Fatalf("approved session: %v, %v; want scopes view", s, err)
	}
}
