// Package browsertest runs headless Chromium for the gateway's browser
// tests. Each Profile is its own Chromium process with a fresh user data
// directory, so profiles share no cookies, like two people's browsers. A
// profile trusts exactly one TLS certificate, named by the SHA-256 of its
// public key: certificate errors for anything else still fail.
package browsertest

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"supportgate/internal/realpeer"
)

// SPKIPin is the value Chromium's --ignore-certificate-errors-spki-list
// takes for cert: base64 of the SHA-256 of its SubjectPublicKeyInfo.
func SPKIPin(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// Profile is one browser with one tab.
type Profile struct {
	t   testing.TB
	ctx context.Context // the tab; it has run once, so timeouts derive from it
}

// Timeout bounds each step: tests wait on DOM conditions, never sleep, and
// a condition that does not come true within it fails the test. It is
// generous because CI machines are shared: at a load average of 14 a
// page's 5 s refresh plus rendering has taken more than 10 s. A passing
// test never waits for it.
const Timeout = 30 * time.Second

// New starts a Chromium profile trusting the certificate with the given
// SPKI pin, with any extra options (flags) appended. It is stopped, and
// its directory removed, when the test ends.
func New(t testing.TB, pin string, extra ...chromedp.ExecAllocatorOption) *Profile {
	t.Helper()
	exe := realpeer.Require(t, "chromium")
	dir, err := os.MkdirTemp("", "sg-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(dir),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("ignore-certificate-errors-spki-list", pin),
		chromedp.WindowSize(1280, 900),
	}
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		os.RemoveAll(dir)
	})
	// The first Run starts the browser and must not carry a timeout.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return &Profile{t: t, ctx: ctx}
}

// Do runs steps in the tab, failing the test if they do not finish within
// Timeout.
func (p *Profile) Do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := p.Try(Timeout, steps...); err != nil {
		p.t.Fatal(err)
	}
}

// Try runs steps in the tab within timeout and returns their error.
func (p *Profile) Try(timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) error {
	_, err := Run(p, timeout, chromedp.Steps(steps...))
	return err
}

// Run runs one action that returns a value in the tab of p within timeout.
func Run[T any](p *Profile, timeout time.Duration, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		return v, fmt.Errorf("browser: %w", err)
	}
	return v, nil
}

// Eval evaluates a JavaScript expression in the page, failing the test on
// error.
func Eval[T any](p *Profile, expr string) T {
	p.t.Helper()
	v, err := Run(p, Timeout, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// Text returns the text content of the first node matching the CSS
// selector, once it exists.
func (p *Profile) Text(sel string) string {
	p.t.Helper()
	v, err := Run(p, Timeout, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatalf("text of %s: %v", sel, err)
	}
	return v
}

// Value returns the value of the first input matching the CSS selector.
func (p *Profile) Value(sel string) string {
	p.t.Helper()
	v, err := Run(p, Timeout, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatalf("value of %s: %v", sel, err)
	}
	return v
}

// Phone emulates a phone-sized touch screen: 390x844 CSS pixels at device
// scale 2, as an iPhone 12 to 15.
func Phone() chromedp.Action[chromedp.Void] {
	return chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch)
}

// Screenshot takes a full-page PNG of the tab and writes it to path when
// write is set; it is taken anyway otherwise, so the code path stays tested.
func (p *Profile) Screenshot(path string, write bool) {
	p.t.Helper()
	png, err := Run(p, Timeout, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	if !write {
		return
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// Until waits until the JavaScript expression is truthy in the page.
func Until(expr string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Poll[bool](expr)(ctx, t)
		return chromedp.Void{}, err
	}
}

// EvalInTarget evaluates expr in the first target of the browser whose
// type is typ ("page", "iframe") and whose URL contains urlPart, such as
// an out-of-process frame. It reports false when there is no such target.
func EvalInTarget[T any](p *Profile, typ, urlPart, expr string) (T, bool) {
	p.t.Helper()
	var zero T
	ctx, cancel := context.WithTimeout(p.ctx, Timeout)
	defer cancel()
	infos, err := chromedp.Targets(ctx)
	if err != nil {
		p.t.Fatalf("listing targets: %v", err)
	}
	for _, in := range infos {
		if string(in.Type) != typ || !strings.Contains(in.URL, urlPart) {
			continue
		}
		tctx, tcancel := chromedp.NewContext(p.ctx, chromedp.WithTargetID(in.TargetID))
		defer tcancel()
		tctx, tcancel2 := context.WithTimeout(tctx, Timeout)
		defer tcancel2()
		v, err := chromedp.Run(tctx, chromedp.Evaluate[T](expr))
		if err != nil {
			p.t.Fatalf("evaluating in %s %s: %v", typ, in.URL, err)
		}
		return v, true
	}
	return zero, false
}
