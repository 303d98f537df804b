package review

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"supportgate/recorder/vt"
	"supportgate/review/reviewtest"
)

// client is a browser-like HTTP client that has followed the player's link.
func client(t *testing.T, srv *Server) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := c.Get(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("opening the link: %s", resp.Status)
	}
	return c
}

func getJSON(t *testing.T, c *http.Client, url string, out any) int {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("GET %s: %v: %s", url, err, b)
		}
	}
	return resp.StatusCode
}

// waitVerified waits for every recording's pass to finish.
func waitVerified(t *testing.T, c *http.Client, base string) map[string]view {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var list struct{ Recordings []view }
		getJSON(t, c, base+"/api/recordings", &list)
		got := map[string]view{}
		pending := false
		for _, v := range list.Recordings {
			got[v.ID] = v
			pending = pending || v.Status == StatusPending
		}
		if !pending {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatal("recordings still verifying after 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestListStatusesAndDetails(t *testing.T) {
	f := newFixtures(t, false)
	src, _ := NewFolder(f.dir)
	srv := serve(t, src, f.keys.Identity)
	c := client(t, srv)
	base := "http://" + srv.cfg.Host
	got := waitVerified(t, c, base)

	tests := []struct {
		id     string
		status Status
		text   string
	}{
		{shellID, StatusVerified, ""},
		{tamperedID, StatusTampered, fmt.Sprintf("tampered at record %d", f.tamperedAt)},
		{truncatedID, StatusCutShort, "cut short"},
	}
	for _, tt := range tests {
		v := got[tt.id]
		if v.Status != tt.status || !strings.Contains(v.Problem, tt.text) {
			t.Errorf("%s: status %q problem %q, want %q containing %q", tt.id, v.Status, v.Problem, tt.status, tt.text)
		}
	}
	sh := got[shellID]
	if sh.Agent != "alice" || sh.Customer != "Acme Router Co" || strings.Join(sh.Scopes, ",") != "shell,tunnel:80" || sh.EndReason != "expired" {
		t.Errorf("shell details = %+v", sh.Item)
	}
	if sh.DurationMS != f.shell.Length.Milliseconds() {
		t.Errorf("duration %d ms, want %d", sh.DurationMS, f.shell.Length.Milliseconds())
	}

	var open openView
	if code := getJSON(t, c, base+"/api/recordings/"+shellID, &open); code != 200 {
		t.Fatalf("open: %d", code)
	}
	s := open.Summary
	if s == nil || len(s.Chat) != 2 || strings.Contains(s.Chat[0].Text, "4111 1111 1111 1111") || !strings.Contains(s.Chat[0].Text, "1111") {
		t.Fatalf("chat not redacted or missing: %+v", s)
	}
	kinds := map[string]int{}
	for _, m := range s.Markers {
		kinds[m.Kind]++
	}
	for _, k := range []string{MarkConsent, MarkJoin, MarkChat, MarkRedaction, MarkEnd} {
		if kinds[k] == 0 {
			t.Errorf("no %s marker in %v", k, kinds)
		}
	}
	if len(open.Keyframes) < 5 {
		t.Errorf("%d keyframes in a two-minute recording, want a keyframe every few seconds", len(open.Keyframes))
	}
}

func TestTermWindowRebuildsTheScreenAtAnyTime(t *testing.T) {
	f := newFixtures(t, false)
	src, _ := NewFolder(f.dir)
	srv := serve(t, src, f.keys.Identity)
	c := client(t, srv)
	base := "http://" + srv.cfg.Host
	sh := reviewtest.DefaultShell

	at := sh.MiddleAt().Milliseconds()
	var w window
	getJSON(t, c, fmt.Sprintf("%s/api/recordings/%s/term?from=%d&to=%d", base, shellID, at, at), &w)
	if w.Keyframe == nil {
		t.Fatal("no keyframe to start from in the middle of the recording")
	}
	var text strings.Builder
	text.Write(w.Keyframe.Data)
	for _, r := range w.Records {
		if r.MS > at {
			t.Fatalf("record at %d ms past to=%d", r.MS, at)
		}
		text.Write(r.Data)
	}
	if !strings.Contains(text.String(), sh.MiddleOutput) {
		t.Fatalf("screen at %d ms lacks %q", at, sh.MiddleOutput)
	}
	later := reviewtest.StepOutput(int(sh.Middle/sh.Step) + 2)
	if strings.Contains(text.String(), later) {
		t.Fatalf("screen at %d ms already shows later output %q", at, later)
	}

	// Continuing after the last record gives the next records, no keyframe.
	last := w.Records[len(w.Records)-1]
	var next window
	getJSON(t, c, fmt.Sprintf("%s/api/recordings/%s/term?from=%d&after=%d&to=%d", base, shellID, last.MS, last.Seq, at+20000), &next)
	if next.Keyframe != nil || len(next.Records) == 0 || next.Records[0].Seq <= last.Seq {
		t.Fatalf("continuation: keyframe %v, %d records", next.Keyframe, len(next.Records))
	}

	// The tampered copy plays up to the damage and says so.
	var tw window
	getJSON(t, c, fmt.Sprintf("%s/api/recordings/%s/term?from=0&to=%d", base, tamperedID, sh.Length.Milliseconds()), &tw)
	if len(tw.Records) == 0 || !strings.Contains(tw.Stop, fmt.Sprintf("tampered at record %d", f.tamperedAt)) {
		t.Fatalf("tampered window: %d records, stop %q", len(tw.Records), tw.Stop)
	}
}

// With screen=1 the server plays the records up to from on the recorder's
// screen model: the window starts with the screen at from as its keyframe,
// the screen that the recorded keyframe and the records after it rebuild,
// and holds no records up to from; continuing after that keyframe gives
// the records after from.
func TestTermWindowRendersTheScreenAtFrom(t *testing.T) {
	f := newFixtures(t, false)
	src, _ := NewFolder(f.dir)
	srv := serve(t, src, f.keys.Identity)
	c := client(t, srv)
	term := fmt.Sprintf("http://%s/api/recordings/%s/term", srv.cfg.Host, shellID)
	sh := reviewtest.DefaultShell
	for _, at := range []int64{0, 3000, sh.MiddleAt().Milliseconds() + 200, sh.Length.Milliseconds()} {
		var replay, screen window
		getJSON(t, c, fmt.Sprintf("%s?from=%d&to=%d", term, at, at), &replay)
		getJSON(t, c, fmt.Sprintf("%s?from=%d&to=%d&screen=1", term, at, at+20000), &screen)
		want := vt.New(80, 24)
		if k := replay.Keyframe; k != nil {
			want = vt.New(k.Cols, k.Rows)
			want.Write(k.Data)
		}
		for _, r := range replay.Records {
			if r.Kind == "r" {
				want.Resize(r.Cols, r.Rows)
			}
			want.Write(r.Data)
		}
		k := screen.Keyframe
		if k == nil || k.MS > at {
			t.Fatalf("at %d ms: keyframe %+v, want the screen at or before it", at, k)
		}
		got := vt.New(k.Cols, k.Rows)
		got.Write(k.Data)
		if got.String() != want.String() {
			t.Errorf("at %d ms the rendered screen is\n%s\nwant, as replayed:\n%s", at, got, want)
		}
		if len(screen.Records) > 0 && screen.Records[0].MS <= at {
			t.Errorf("at %d ms: record %d at %d ms after the rendered screen", at, screen.Records[0].Seq, screen.Records[0].MS)
		}
		if at == sh.Length.Milliseconds() {
			if !screen.End || len(screen.Records) != 0 {
				t.Errorf("at the end: end %v, %d records", screen.End, len(screen.Records))
			}
			continue
		}
		var next window
		getJSON(t, c, fmt.Sprintf("%s?from=%d&after=%d&to=%d", term, k.MS, k.Seq, at+20000), &next)
		if next.Keyframe != nil || len(next.Records) == 0 || next.Records[0].MS <= at {
			t.Errorf("continuing after the rendered screen at %d ms: keyframe %v, %d records", at, next.Keyframe, len(next.Records))
		} else if len(screen.Records) > 0 && next.Records[0].Seq != screen.Records[0].Seq {
			t.Errorf("continuing after the rendered screen at %d ms starts at record %d, the window at %d", at, next.Records[0].Seq, screen.Records[0].Seq)
		}
	}
}

func TestAccessNeedsTheLinkAndTheHost(t *testing.T) {
	f := newFixtures(t, false)
	src, _ := NewFolder(f.dir)
	srv := serve(t, src, f.keys.Identity)
	base := "http://" + srv.cfg.Host

	resp, err := http.Get(base + "/api/recordings")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without the link's cookie: %s, want 401", resp.Status)
	}
	resp, err = http.Get(base + "/?k=not-the-token")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("with a wrong token: %s, want 401", resp.Status)
	}
	// DNS rebinding: a page on evil.example resolving to 127.0.0.1.
	req, _ := http.NewRequest("GET", srv.URL(), nil)
	req.Host = "evil.example:80"
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("foreign Host header: %s, want 421", resp.Status)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}
	c := client(t, srv)
	if code := getJSON(t, c, base+"/api/recordings/..%2fetc", nil); code != http.StatusNotFound {
		t.Errorf("path-like id: %d, want 404", code)
	}
}

// truncatedFolder is a Folder whose list, like a gateway's past 10,000
// sessions, left recordings out.
type truncatedFolder struct{ *Folder }

func (truncatedFolder) Truncated() bool { return true }

// TestListSaysTruncated: the list API says when the source left
// recordings out, and only then.
func TestListSaysTruncated(t *testing.T) {
	f := newFixtures(t, false)
	for _, truncated := range []bool{false, true} {
		folder, _ := NewFolder(f.dir)
		var src Source = folder
		if truncated {
			src = truncatedFolder{folder}
		}
		srv := serve(t, src, f.keys.Identity)
		var list struct{ Truncated bool }
		if code := getJSON(t, client(t, srv), "http://"+srv.cfg.Host+"/api/recordings", &list); code != 200 || list.Truncated != truncated {
			t.Errorf("source truncated %v: list says %v (status %d)", truncated, list.Truncated, code)
		}
	}
}
