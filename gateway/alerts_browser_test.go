package gateway_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"supportgate/gateway"
	"supportgate/gateway/browsertest"
	"supportgate/gateway/detect"
	"supportgate/gateway/identity"
	"supportgate/internal/realpeer"
	"supportgate/session"
)

// newDetectWebEnv is newWebEnv with the detector on and the auto-lock
// policy: a browser gateway on the real clock.
func newDetectWebEnv(t *testing.T) *webEnv {
	t.Helper()
	realpeer.Require(t, "chromium")
	e := newEnvWith(t, func(c *gateway.Config) {
		c.Clock = nil // the wall clock: browsers and TOTP codes run on it
		c.Policy = session.Policy{MinDuration: time.Second, MaxOpenPerAgent: 100}
		c.Detect = &detect.Config{}
		c.AutoLock = true
	})
	leaf, err := x509.ParseCertificate(e.mat.TLSCert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return &webEnv{env: e, pin: browsertest.SPKIPin(leaf)}
}

// bearer signs name in through the API with a code for now and returns
// the bearer-token user.
func (w *webEnv) bearer(name string, secret []byte) *testUser {
	w.t.Helper()
	var resp struct {
		Token string `json:"token"`
	}
	w.do(nil, "POST", "/api/v1/login", map[string]string{"user": name, "password": testPassword, "totp": identity.TOTPCode(secret, time.Now())}, 200, &resp)
	return &testUser{name: name, token: resp.Token}
}

// TestBrowserAlerts: an agent opens about thirty sessions in a few
// seconds through the API; the team supervisor's console, open on the
// Alerts view, shows the critical alert with its sentence without a
// reload; the supervisor acknowledges it with a note, then resolves it,
// and finds it under the resolved filter with the note. The auto-lock
// ended the agent's live session, which the console shows as locked.
func TestBrowserAlerts(t *testing.T) {
	t.Parallel()
	w := newDetectWebEnv(t)
	aliceSecret := w.staff("alice", "Alice Example", identity.RoleAgent, "red")
	samSecret := w.staff("sam", "Sam Super", identity.RoleSupervisor, "red")
	alice := w.bearer("alice", aliceSecret)
	root := w.bearer("root", w.staff("root", "Root Admin", identity.RoleAdmin, ""))

	// A live session, approved by the customer, for the lock to end.
	live := w.newSession(alice, []string{"view"}, "30m")
	cu := w.customer(live.token())
	cu.open()
	if code, v := cu.post("approve", map[string]any{"scopes": []string{"view"}}); code != 200 {
		t.Fatalf("approve: %d %v", code, v)
	}

	b := w.browser()
	w.signIn(b, "sam", identity.TOTPCode(samSecret, time.Now()))
	b.Do(
		chromedp.WaitVisible(chromedp.CSS(`#views a#view-alerts`)),
		chromedp.Click(chromedp.CSS(`#view-alerts`)),
		chromedp.WaitVisible(chromedp.CSS("#alerts-empty")),
		chromedp.WaitNotVisible(chromedp.CSS("#sessions")),
	)

	// The burst: sessions with thirty customers, as fast as the API takes them.
	opened := 0
	for i := range 30 {
		code, body := w.send(nil, alice, "POST", "/api/v1/sessions", map[string]any{
			"customer": fmt.Sprintf("customer %02d", i), "scopes": []string{"view"}, "duration": "30m"})
		if code == http.StatusUnauthorized || code == http.StatusForbidden {
			break // locked already
		}
		if code != http.StatusCreated {
			t.Fatalf("session %d: %d %s", i, code, body)
		}
		opened++
	}
	burst := time.Now()
	t.Logf("alice opened %d sessions before the lock", opened)

	// The open list refreshes every 5 s: the alert appears without a reload.
	sel := `#alert-rows tr[data-agent="alice"][data-kind="session_burst"]`
	if err := b.Try(browsertest.Timeout, chromedp.WaitVisible(chromedp.CSS(sel+`[data-severity="critical"]`))); err != nil {
		t.Fatalf("no critical alert on the alerts page: %v; page: %q", err, b.Text("#alerts"))
	}
	t.Logf("the alert showed %v after the burst", time.Since(burst).Round(time.Millisecond))
	if got := b.Text(sel + ` td.summary`); !strings.HasPrefix(got, "alice opened ") || !strings.Contains(got, "sessions in") || !strings.Contains(got, "new customers") {
		t.Errorf("alert sentence %q, want how many sessions alice opened and how fast", got)
	}
	id := browsertest.Eval[string](b, `document.querySelector('`+sel+`').dataset.id`)

	// Acknowledge with a note: the row shows who and the note.
	b.Do(
		chromedp.SendKeys(chromedp.CSS(sel+` input.note`), "calling alice on her desk phone"),
		chromedp.Click(chromedp.CSS(sel+` button.ack`)),
		chromedp.WaitVisible(chromedp.CSS(sel+`[data-state="acknowledged"]`)),
	)
	if got := b.Text(sel + ` td.state`); got != "acknowledged by sam: calling alice on her desk phone" {
		t.Errorf("state after Acknowledge reads %q", got)
	}
	b.Screenshot(filepath.Join(screenshotDir, "console-alerts.png"), *updateScreenshots)

	// Resolve: it leaves the default "not resolved" list and shows under
	// the resolved filter with the incident note.
	b.Do(
		chromedp.SendKeys(chromedp.CSS(sel+` input.note`), "phished; password reset, sessions reviewed"),
		chromedp.Click(chromedp.CSS(sel+` button.resolve`)),
		chromedp.WaitNotPresent(chromedp.CSS(sel)),
		chromedp.SetValue(chromedp.CSS("#alerts-state"), "resolved"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("alerts-state").dispatchEvent(new Event("change"))`),
		chromedp.WaitVisible(chromedp.CSS(sel+`[data-state="resolved"]`)),
	)
	if got := b.Text(sel + ` td.state`); got != "resolved by sam: phished; password reset, sessions reviewed" {
		t.Errorf("state after Resolve reads %q", got)
	}
	if vis := browsertest.Eval[bool](b, `!document.querySelector('`+sel+` button.ack').hidden || !document.querySelector('`+sel+` button.resolve').hidden`); vis {
		t.Errorf("a resolved alert still offers Acknowledge or Resolve")
	}
	var a detect.Alert
	w.do(root, "GET", "/api/v1/alerts/"+id, nil, 200, &a)
	if a.State != detect.Resolved || a.By != "sam" || a.Note != "phished; password reset, sessions reviewed" {
		t.Errorf("alert %s on the gateway: %+v", id, a)
	}

	// The auto-lock ended alice's live session; the Sessions view says so.
	b.Do(
		chromedp.Click(chromedp.CSS(`#view-main`)),
		chromedp.WaitVisible(chromedp.CSS("#sessions")),
		chromedp.WaitVisible(row(live.ID, "ended")),
	)
	if got := b.Text(`#session-rows tr[data-id="` + live.ID + `"] td.time`); !strings.Contains(got, "locked by detector") {
		t.Errorf("the live session's row reads %q, want locked by detector", got)
	}
	s, err := w.g.Broker().Get(context.Background(), live.ID)
	if err != nil || s.State != session.Ended || s.EndReason != session.EndLocked {
		t.Fatalf("live session after the alert: %+v %v, want ended, locked", s, err)
	}
	if code, _ := w.send(nil, alice, "GET", "/api/v1/sessions", nil); code != http.StatusUnauthorized && code != http.StatusForbidden {
		t.Errorf("locked agent's token: got %d", code)
	}
}
