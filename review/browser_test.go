package review

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"supportgate/gateway/browsertest"
	"supportgate/review/reviewtest"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "write docs/screenshots/review.png from the browser test")

// TestReviewInBrowser is the player end to end in headless Chromium: the
// list and its integrity column, seeking to the middle of a shell
// recording, search jumping to a command, the screen share's video
// decoding frames, and damaged copies that say what is wrong and still
// play their intact part.
func TestReviewInBrowser(t *testing.T) {
	f := newFixtures(t, true)
	src, _ := NewFolder(f.dir)
	srv := serve(t, src, f.keys.Identity)
	b := browsertest.New(t, "")
	sh := f.shell

	b.Do(chromedp.Navigate(srv.URL()))
	// The list: four rows, each verified or naming its damage.
	b.Do(browsertest.Until(`document.querySelectorAll("#rows tr").length === 4 &&
		![...document.querySelectorAll("#rows td.integrity")].some(td => td.textContent.includes("verifying"))`))
	status := func(id string) string {
		return browsertest.Eval[string](b, fmt.Sprintf(`document.querySelector('#rows tr[data-id=%q] td.integrity').textContent`, id))
	}
	for id, want := range map[string]string{
		shellID: "verified", screenID: "verified",
		tamperedID:  fmt.Sprintf("tampered at record %d", f.tamperedAt),
		truncatedID: "cut short",
	} {
		if got := status(id); got != want {
			t.Errorf("%s: integrity %q, want %q", id, got, want)
		}
	}
	// Start times read in UTC, as verify and the audit log write them.
	if got := browsertest.Eval[string](b, fmt.Sprintf(`document.querySelector('#rows tr[data-id=%q] td:nth-child(3)').textContent`, shellID)); !strings.HasSuffix(got, " UTC") {
		t.Errorf("start shown as %q, want UTC", got)
	}
	if got := browsertest.Eval[string](b, `document.cookie`); got != "" {
		t.Errorf("the player set cookies: %q", got)
	}

	// Open the shell recording and seek to its middle.
	open := func(id string) {
		t.Helper()
		b.Do(chromedp.Click(chromedp.CSS(fmt.Sprintf(`#rows tr[data-id=%q] button`, id))),
			browsertest.Until(fmt.Sprintf(`sgReview.cur && sgReview.cur.id === %q && sgReview.idle() && !!sgReview.cur.seeked`, id)))
	}
	open(shellID)
	// Wide characters take two columns, as in recorder/vt's keyframes
	// (recorder/vt's TestScreenMatchesXterm compares the two).
	if v := browsertest.Eval[string](b, `sgReview.term.unicode.activeVersion`); v != "11" {
		t.Errorf("the terminal counts widths by Unicode %q, want 11", v)
	}
	mid := sh.MiddleAt().Milliseconds() + 200
	b.Do(chromedp.SetValue(chromedp.CSS("#seek"), fmt.Sprint(mid)),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("seek").dispatchEvent(new Event("change"))`),
		browsertest.Until(fmt.Sprintf(`sgReview.cur.pos === %d && sgReview.idle() && sgReview.screenText().includes(%q)`, mid, sh.MiddleOutput)))
	screen := browsertest.Eval[string](b, `sgReview.screenText()`)
	later := reviewtest.StepOutput(int(sh.Middle/sh.Step) + 2)
	if strings.Contains(screen, later) {
		t.Errorf("after seeking to %d ms the terminal already shows %q, from later:\n%s", mid, later, screen)
	}
	if n := browsertest.Eval[int](b, `document.querySelectorAll("#markers .marker").length`); n < 5 {
		t.Errorf("%d markers on the seek bar", n)
	}
	if chat := b.Text("#chat"); !strings.Contains(chat, "1111") || strings.Contains(chat, sh.CardInChat) {
		t.Errorf("chat transcript %q: want the card redacted to its last four digits", chat)
	}
	// Play a little: the clock moves and later output appears.
	b.Do(chromedp.Click(chromedp.CSS("#play")),
		browsertest.Until(fmt.Sprintf(`sgReview.cur.pos > %d`, mid+300)),
		chromedp.Click(chromedp.CSS("#play")))
	b.Screenshot(filepath.Join("..", "docs", "screenshots", "review.png"), *updateScreenshots)

	// Search finds a command and jumps to it.
	step := int(sh.Middle/sh.Step) - 3
	cmd := "echo " + reviewtest.StepOutput(step)
	b.Do(chromedp.SetValue(chromedp.CSS("#q"), cmd),
		chromedp.Click(chromedp.CSS(`#search button`)),
		browsertest.Until(`document.querySelectorAll("#hits button.hit").length > 0`))
	hits := b.Text("#hits")
	if !strings.Contains(hits, cmd) {
		t.Fatalf("search results %q lack %q", hits, cmd)
	}
	cmdAt := (time.Duration(step) * sh.Step).Milliseconds()
	b.Do(chromedp.Click(chromedp.CSS(`#hits button.hit`)),
		browsertest.Until(fmt.Sprintf(`sgReview.cur.pos === %d && sgReview.idle() && sgReview.screenText().includes(%q)`, cmdAt, cmd)))
	if screen := browsertest.Eval[string](b, `sgReview.screenText()`); strings.Contains(screen, reviewtest.StepOutput(step+1)) {
		t.Errorf("after jumping to the command at %d ms the terminal shows later output:\n%s", cmdAt, screen)
	}

	// The screen share: the video element decodes frames.
	open(screenID)
	b.Do(browsertest.Until(`!document.getElementById("video").hidden`),
		chromedp.Click(chromedp.CSS("#play")),
		browsertest.Until(`document.getElementById("video").getVideoPlaybackQuality().totalVideoFrames > 5`))
	if w := browsertest.Eval[int](b, `document.getElementById("video").videoWidth`); w != 320 {
		t.Errorf("video width %d, want 320", w)
	}
	b.Do(chromedp.Click(chromedp.CSS("#play")))

	// Damaged copies: a banner with the verifier's finding, and the intact
	// part on screen, never an empty player.
	for id, want := range map[string]string{
		tamperedID:  fmt.Sprintf("tampered at record %d", f.tamperedAt),
		truncatedID: "cut short",
	} {
		open(id)
		b.Do(browsertest.Until(`!document.getElementById("p-banner").hidden`))
		if banner := b.Text("#p-banner"); !strings.Contains(banner, want) {
			t.Errorf("%s: banner %q, want %q", id, banner, want)
		}
		b.Do(browsertest.Until(`(sgReview.seek(20000), true)`),
			browsertest.Until(fmt.Sprintf(`sgReview.screenText().includes(%q)`, reviewtest.StepOutput(3))))
	}
}

// An H.264 screen share opens with a note and the IVF link in place of a
// video the player cannot show.
func TestReviewH264InBrowser(t *testing.T) {
	f := newFixtures(t, false)
	const id = "sess-h264"
	reviewtest.WriteScreen(t, filepath.Join(f.dir, id+".sgrec"), id, f.keys, reviewtest.H264(t, 2, 10), 10)
	src, _ := NewFolder(f.dir)
	srv := serve(t, src, f.keys.Identity)
	b := browsertest.New(t, "")
	b.Do(chromedp.Navigate(srv.URL()),
		browsertest.Until(`!![...document.querySelectorAll("#rows tr")].find(tr => tr.dataset.id === "sess-h264")`),
		chromedp.Click(chromedp.CSS(`#rows tr[data-id="sess-h264"] button`)),
		browsertest.Until(`sgReview.cur && sgReview.cur.id === "sess-h264" && sgReview.idle()`),
		browsertest.Until(`!document.getElementById("video-h264").hidden`))
	if !browsertest.Eval[bool](b, `document.getElementById("video").hidden`) {
		t.Error("the video element is shown for an H.264 share")
	}
	if href := browsertest.Eval[string](b, `document.getElementById("video-h264-ivf").getAttribute("href")`); !strings.HasSuffix(href, "/export?format=ivf") {
		t.Errorf("IVF link %q", href)
	}
}

// TestReviewTokenStaysWithThePlayer: another server on 127.0.0.1, at
// another port, that the reviewer's browser visits while the player is
// open (by a link from the player, or typed) learns nothing of the
// player's access token: no cookie (browsers do not isolate cookies by
// port), no Referer. With the token it could read decrypted recordings.
func TestReviewTokenStaysWithThePlayer(t *testing.T) {
	f := newFixtures(t, false)
	src, _ := NewFolder(f.dir)
	srv := serve(t, src, f.keys.Identity)
	token := strings.TrimSuffix(strings.TrimPrefix(srv.URL(), "http://"+srv.cfg.Host+"/r/"), "/")

	// other records the headers of each request it gets.
	type visit struct{ path, cookie, referer string }
	visits := make(chan visit, 10)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case visits <- visit{r.URL.Path, r.Header.Get("Cookie"), r.Header.Get("Referer")}:
		default: // a favicon too many; the test reads the first few
		}
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<!doctype html><title>other</title><p>another local server</p>")
	}))
	defer other.Close()
	if !strings.HasPrefix(other.URL, "http://127.0.0.1:") {
		t.Fatalf("the other server is at %s, want 127.0.0.1", other.URL)
	}

	b := browsertest.New(t, "")
	b.Do(chromedp.Navigate(srv.URL()),
		browsertest.Until(`document.querySelectorAll("#rows tr").length > 0`))
	// next waits for the other server's request for path.
	next := func(path string) visit {
		t.Helper()
		for {
			select {
			case v := <-visits:
				if v.path == path {
					return v
				}
			case <-time.After(browsertest.Timeout):
				t.Fatalf("the other server got no request for %s", path)
			}
		}
	}
	// A plain link from the player's page, then the address typed.
	b.Do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
		const a = document.createElement("a");
		a.id = "out"; a.href = %q; a.textContent = "elsewhere";
		document.body.append(a);
	})()`, other.URL+"/linked")),
		chromedp.Click(chromedp.CSS("#out")))
	got := []visit{next("/linked")}
	// Typed while the link's page still loads, the address can abort or be
	// aborted by it (net::ERR_ABORTED, seen in a CI run at load 17): then
	// it is typed again.
	for try := 1; ; try++ {
		err := b.Try(browsertest.Timeout, chromedp.Navigate(other.URL+"/typed"))
		if err == nil {
			break
		}
		if try == 3 || !strings.Contains(err.Error(), "ERR_ABORTED") {
			t.Fatalf("typing the other server's address: %v", err)
		}
	}
	got = append(got, next("/typed"))
	for _, v := range got {
		want := v.path
		if strings.Contains(v.cookie, token) || strings.Contains(v.cookie, "sg_review") {
			t.Errorf("%s: the other server got the player's token in Cookie: %q", want, v.cookie)
		}
		if strings.Contains(v.referer, token) || strings.Contains(v.referer, srv.cfg.Host) {
			t.Errorf("%s: the other server got the player's address in Referer: %q", want, v.referer)
		}
	}
}
