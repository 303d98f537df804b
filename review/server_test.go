package review

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"supportgate/recorder/vt"
	"supportgate/review/reviewtest"
)

// client is an HTTP client that has opened the player's link. It keeps
// no cookies: the link's secret path prefix is all the access there is.
func client(t *testing.T, srv *Server) *http.Client {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second}
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

// apiBase is the player's URL without its trailing slash: the secret
// prefix that every path of the player is under.
func apiBase(srv *Server) string { return strings.TrimSuffix(srv.URL(), "/") }

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
	base := apiBase(srv)
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
	base := apiBase(srv)
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
	term := apiBase(srv) + "/api/recordings/" + shellID + "/term"
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

// TestAccessNeedsTheLinkAndTheHost checks that the player answers only
// under the secret prefix of its link, on its own host, and never sets a
// cookie: browsers send a cookie of 127.0.0.1 to every port of it.
func TestAccessNeedsTheLinkAndTheHost(t *testing.T) {
	f := newFixtures(t, false)
	src, _ := NewFolder(f.dir)
	srv := serve(t, src, f.keys.Identity)
	root := "http://" + srv.cfg.Host
	link := srv.URL()
	if !strings.HasPrefix(link, root+"/r/") || !strings.HasSuffix(link, "/") || strings.ContainsAny(link, "?#") {
		t.Fatalf("link %q, want %s/r/TOKEN/", link, root)
	}
	token := strings.TrimSuffix(strings.TrimPrefix(link, root+"/r/"), "/")
	wrong := []byte(token)
	wrong[0] ^= 1 // still base64url, same length

	get := func(url string, edit func(*http.Request)) *http.Response {
		t.Helper()
		req, err := http.NewRequest("GET", url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			edit(req)
		}
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	withToken := func(r *http.Request) {
		r.AddCookie(&http.Cookie{Name: "sg_review", Value: token})
		r.Header.Set("Authorization", "Bearer "+token)
	}
	for _, tt := range []struct {
		name string
		url  string
		edit func(*http.Request)
		code int
	}{
		{"the link", link, nil, http.StatusOK},
		{"the list under the prefix", link + "api/recordings", nil, http.StatusOK},
		{"an asset under the prefix", link + "static/review.js", nil, http.StatusOK},
		{"the prefix without its slash", root + "/r/" + token, nil, http.StatusSeeOther},
		{"the root", root + "/", nil, http.StatusNotFound},
		{"the old link", root + "/?k=" + token, withToken, http.StatusNotFound},
		{"the list outside the prefix", root + "/api/recordings", withToken, http.StatusNotFound},
		{"an asset outside the prefix", root + "/static/review.js", nil, http.StatusNotFound},
		{"a wrong token", root + "/r/" + string(wrong) + "/api/recordings", withToken, http.StatusNotFound},
		{"a shorter token", root + "/r/" + token[:len(token)-1] + "/api/recordings", nil, http.StatusNotFound},
		{"a longer token", root + "/r/" + token + "x/api/recordings", nil, http.StatusNotFound},
		{"an empty token", root + "/r//api/recordings", nil, http.StatusNotFound},
		{"a path-like id", link + "api/recordings/..%2fetc", nil, http.StatusNotFound},
		// DNS rebinding: a page on evil.example resolving to 127.0.0.1.
		{"a foreign Host header", link, func(r *http.Request) { r.Host = "evil.example:80" }, http.StatusMisdirectedRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := get(tt.url, tt.edit)
			if resp.StatusCode != tt.code {
				t.Errorf("got %s, want %d", resp.Status, tt.code)
			}
			if c := resp.Header.Values("Set-Cookie"); len(c) != 0 {
				t.Errorf("Set-Cookie %q: the player must not set cookies", c)
			}
			if rp := resp.Header.Get("Referrer-Policy"); rp != "no-referrer" {
				t.Errorf("Referrer-Policy %q, want no-referrer", rp)
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
				t.Errorf("CSP %q", csp)
			}
			if tt.code == http.StatusSeeOther {
				if loc := resp.Header.Get("Location"); loc != "/r/"+token+"/" {
					t.Errorf("redirect to %q, want the prefix with its slash", loc)
				}
			}
		})
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
		if code := getJSON(t, client(t, srv), apiBase(srv)+"/api/recordings", &list); code != 200 || list.Truncated != truncated {
			t.Errorf("source truncated %v: list says %v (status %d)", truncated, list.Truncated, code)
		}
	}
}

// keptText is the search text srv keeps for each recording, in bytes as
// the budget counts them, and the recordings the budget cut.
func keptText(srv *Server) (total int64, cut int) {
	srv.cat.mu.Lock()
	defer srv.cat.mu.Unlock()
	for _, e := range srv.cat.entries {
		if e.sum == nil {
			continue
		}
		for _, l := range e.sum.lines {
			total += lineCost(l)
		}
		if e.sum.TextCut {
			cut++
		}
	}
	return total, cut
}

// TestSearchTextBudget checks that the search text of all recordings
// together stays within the review's budget, and that search says when
// the budget left text out.
func TestSearchTextBudget(t *testing.T) {
	f := newFixtures(t, false)
	search := func(srv *Server) (hits int, incomplete string) {
		t.Helper()
		c := client(t, srv)
		waitVerified(t, c, apiBase(srv))
		var res struct {
			Hits       []Hit
			Incomplete string
		}
		if code := getJSON(t, c, apiBase(srv)+"/api/search?q=step-", &res); code != 200 {
			t.Fatalf("search: %d", code)
		}
		return len(res.Hits), res.Incomplete
	}

	// Unlimited: three recordings' text (the tampered and truncated
	// copies hold part of the shell recording's).
	src, _ := NewFolder(f.dir)
	srv := serve(t, src, f.keys.Identity)
	hits, incomplete := search(srv)
	all, cut := keptText(srv)
	if incomplete != "" || cut != 0 || hits == 0 {
		t.Fatalf("default budget: %d bytes kept, %d recordings cut, %d hits, incomplete %q; want all kept", all, cut, hits, incomplete)
	}

	budget := all / 2
	src, _ = NewFolder(f.dir)
	srv = serveConfig(t, src, func(c *Config) { c.MaxSearchText = budget }, f.keys.Identity)
	hits, incomplete = search(srv)
	kept, cut := keptText(srv)
	t.Logf("%d bytes of search text in all; with a budget of %d, %d kept, %d recordings cut, %d hits", all, budget, kept, cut, hits)
	if kept > budget || kept == 0 {
		t.Errorf("kept %d bytes of search text, want some and at most the budget of %d", kept, budget)
	}
	if cut == 0 || !strings.Contains(incomplete, "searched only in part") {
		t.Errorf("%d recordings cut, search says %q; want it to say the budget left text out", cut, incomplete)
	}
	if hits == 0 {
		t.Error("no hits in the text kept")
	}
}
