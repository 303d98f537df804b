package review

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"supportgate/gateway/browsertest"
	"supportgate/recorder"
	"supportgate/recorder/recordertest"
)

// writeTwoShells records a shell with a terminal on channel 1 and a
// command without one on channel 2, at the same time, for 30 s.
func writeTwoShells(w *recorder.Writer, clk *recordertest.Clock) {
	w.Event("ssh.shell", map[string]string{"agent": "alice", "pty": "yes", "channel_id": "1"})
	w.ResizeOn(1, 80, 24)
	w.Event("ssh.exec", map[string]string{"agent": "alice", "command": "sh", "pty": "no", "channel_id": "2"})
	for i := range 30 {
		clk.Advance(time.Second)
		w.OutputOn(1, []byte("one says "))
		w.StdinOn(2, []byte("echo two "))
		w.OutputOn(1, []byte(strings.Repeat("o", i)+"\r\n"))
		w.StdinOn(2, []byte(strings.Repeat("t", i)+"\n"))
		w.OutputOn(2, []byte("two says "+strings.Repeat("t", i)+"\n"))
	}
}

// serveTwoShells serves a folder holding writeTwoShells's recording as
// sess-1.
func serveTwoShells(t *testing.T) *Server {
	t.Helper()
	k := recordertest.NewKeys(t)
	clk := recordertest.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	dir := t.TempDir()
	w, err := recorder.Create(filepath.Join(dir, "sess-1.sgrec"), recordertest.Config(k, clk))
	if err != nil {
		t.Fatal(err)
	}
	writeTwoShells(w, clk)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	src, err := NewFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, src, k.Identity)
}

// TestScanNamesChannels: the verifying pass lists a recording's terminal
// channels, picks the first with a terminal as the default, keeps each
// channel's lines apart for search and names the channel in the search
// text and the input markers.
func TestScanNamesChannels(t *testing.T) {
	open := recorded(t, writeTwoShells)
	s := scan(context.Background(), open(), newTextBudget(1<<20))
	if want := []TermChannel{{1, true}, {2, false}}; !slices.Equal(s.Channels, want) || s.DefaultChannel != 1 {
		t.Errorf("channels %v default %d, want %v default 1", s.Channels, s.DefaultChannel, want)
	}
	var texts []string
	for _, l := range s.lines {
		texts = append(texts, l.text)
	}
	for _, want := range []string{
		"[channel 1] one says " + strings.Repeat("o", 29),
		"[channel 2] two says " + strings.Repeat("t", 29),
		"input on channel 2: echo two " + strings.Repeat("t", 29),
	} {
		if !slices.Contains(texts, want) {
			t.Errorf("search text lacks %q: %q", want, texts)
		}
	}
	var inputs, opened []string
	for _, m := range s.Markers {
		switch {
		case m.Kind == MarkInput:
			inputs = append(inputs, m.Label)
		case m.Kind == MarkJoin:
			opened = append(opened, m.Label)
		}
	}
	if len(inputs) == 0 || inputs[0] != "input sent on channel 2: echo two" {
		t.Errorf("input markers %q, want the first to be %q", inputs, "input sent on channel 2: echo two")
	}
	if len(opened) != 2 || !strings.Contains(opened[0], "on channel 1") || !strings.Contains(opened[1], "on channel 2") {
		t.Errorf("shell and command markers %q, want them to name their channels", opened)
	}
}

// TestPlayerChannels: the player's API shows one channel at a time: the
// open view names the default channel and lists them all, a terminal
// window and its screen hold only the channel asked for (by default the
// first terminal), and so does the asciicast export; search hits name
// their channel.
func TestPlayerChannels(t *testing.T) {
	srv := serveTwoShells(t)
	c := client(t, srv)
	base := apiBase(srv)
	waitVerified(t, c, base)

	var ov struct {
		Channel int
		Summary struct {
			Channels       []TermChannel
			DefaultChannel int `json:"default_channel"`
		}
	}
	if code := getJSON(t, c, base+"/api/recordings/sess-1", &ov); code != 200 || ov.Channel != 1 || len(ov.Summary.Channels) != 2 {
		t.Fatalf("open: %d, channel %d, channels %v; want 200, 1 and two channels", code, ov.Channel, ov.Summary.Channels)
	}

	for _, tt := range []struct {
		query      string
		mine, not  string
		wantScreen string
	}{
		// At 29 s the last line is the 29th (i = 28); channel 2 has no
		// terminal, its lines end without a carriage return.
		{"", "one says", "two says", "one says " + strings.Repeat("o", 28)},
		{"&channel=1", "one says", "two says", "one says " + strings.Repeat("o", 28)},
		{"&channel=2", "two says", "one says", "two says"},
	} {
		var win window
		if code := getJSON(t, c, base+"/api/recordings/sess-1/term?from=0&to=60000"+tt.query, &win); code != 200 {
			t.Fatalf("term%s: %d", tt.query, code)
		}
		var text strings.Builder
		for _, r := range win.Records {
			text.Write(r.Data)
		}
		if !strings.Contains(text.String(), tt.mine) || strings.Contains(text.String(), tt.not) {
			t.Errorf("term%s: got %q, want %q and not %q", tt.query, text.String(), tt.mine, tt.not)
		}
		if code := getJSON(t, c, base+"/api/recordings/sess-1/term?from=29000&to=29000&screen=1"+tt.query, &win); code != 200 || win.Keyframe == nil {
			t.Fatalf("screen%s: %d, keyframe %v", tt.query, code, win.Keyframe)
		}
		if kf := string(win.Keyframe.Data); !strings.Contains(kf, tt.wantScreen) || strings.Contains(kf, tt.not) {
			t.Errorf("screen%s at 29 s: got %q, want %q and not %q", tt.query, kf, tt.wantScreen, tt.not)
		}

		resp, err := c.Get(base + "/api/recordings/sess-1/export?format=asciicast" + tt.query)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), tt.mine) || strings.Contains(string(b), tt.not) {
			t.Errorf("asciicast%s: %s, want %q and not %q:\n%s", tt.query, resp.Status, tt.mine, tt.not, b)
		}
	}
	for _, q := range []string{"/term?channel=x", "/term?channel=-1", "/export?format=jsonl&channel=2"} {
		resp, err := c.Get(base + "/api/recordings/sess-1" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: got %s, want 400", q, resp.Status)
		}
	}

	var res struct{ Hits []Hit }
	getJSON(t, c, base+"/api/search?q=two+says", &res)
	if len(res.Hits) == 0 || res.Hits[0].Channel == nil || *res.Hits[0].Channel != 2 {
		t.Errorf("search hits %+v, want channel 2's lines", res.Hits)
	}
}

// TestReviewChannelsInBrowser: in headless Chromium, a recording of two
// channels opens on the first terminal, offers both in the selector, and
// switching shows the other channel's screen only; the export link
// follows the channel shown.
func TestReviewChannelsInBrowser(t *testing.T) {
	srv := serveTwoShells(t)
	b := browsertest.New(t, "")
	b.Do(chromedp.Navigate(srv.URL()),
		browsertest.Until(`document.querySelectorAll("#rows tr").length === 1 &&
			!document.querySelector("#rows td.integrity").textContent.includes("verifying")`),
		chromedp.Click(chromedp.CSS(`#rows tr[data-id="sess-1"] button`)),
		browsertest.Until(`sgReview.cur && sgReview.idle() && !!sgReview.cur.seeked && !document.getElementById("channel").hidden`))
	if opts := b.Text("#channel"); !strings.Contains(opts, "channel 1") || !strings.Contains(opts, "channel 2 (no terminal)") {
		t.Errorf("channel selector offers %q, want channel 1 and channel 2 (no terminal)", opts)
	}
	b.Do(chromedp.Evaluate[chromedp.Void](`sgReview.seek(29000)`),
		browsertest.Until(`sgReview.idle() && sgReview.screenText().includes("one says")`))
	if s := browsertest.Eval[string](b, `sgReview.screenText()`); strings.Contains(s, "two says") {
		t.Errorf("channel 1's screen shows channel 2's output:\n%s", s)
	}
	b.Do(chromedp.SetValue(chromedp.CSS("#channel"), "2"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("channel").dispatchEvent(new Event("change"))`),
		browsertest.Until(`sgReview.cur.channel === 2 && sgReview.idle() && sgReview.screenText().includes("two says")`))
	if s := browsertest.Eval[string](b, `sgReview.screenText()`); strings.Contains(s, "one says") {
		t.Errorf("channel 2's screen shows channel 1's output:\n%s", s)
	}
	if href := browsertest.Eval[string](b, `document.getElementById("x-asciicast").getAttribute("href")`); !strings.HasSuffix(href, "&channel=2") {
		t.Errorf("asciicast link %q, want it to export channel 2", href)
	}
}
