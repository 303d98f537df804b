package gateway_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"image/png"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"supportgate/gateway"
	"supportgate/gateway/identity"
	"supportgate/web"
)

func init() {
	addAccess(map[string]string{
		"GET /console":                      "public",
		"GET /c/{token}":                    "public",
		"GET /enroll/{token}":               "public",
		"GET /static/{file}":                "public",
		"GET /api/v1/enroll/{token}/qr.png": "public",
	})
}

// TestPagesHeaders: every page and asset is served with its content type
// and the hardening headers of DESIGN.md section 6.
func TestPagesHeaders(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ path, ctype, contains string }{
		{"/console", "text/html; charset=utf-8", `<script src="/static/console.js"`},
		{"/c/" + strings.Repeat("A", 43), "text/html; charset=utf-8", `<script src="/static/consent.js"`},
		{"/enroll/whatever", "text/html; charset=utf-8", `<script src="/static/enroll.js"`},
		{"/static/style.css", "text/css; charset=utf-8", "font-family"},
		{"/static/common.js", "text/javascript; charset=utf-8", "sg.api"},
		{"/static/consent.js", "text/javascript; charset=utf-8", "/api/v1/consent/"},
	} {
		resp, err := e.client().Get(e.srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != c.ctype || !bytes.Contains(body, []byte(c.contains)) {
			t.Errorf("GET %s: got %d %q, want 200 %q with %q", c.path, resp.StatusCode, resp.Header.Get("Content-Type"), c.ctype, c.contains)
		}
		h := resp.Header
		csp := h.Get("Content-Security-Policy")
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") || !strings.Contains(csp, "frame-ancestors 'none'") ||
			!strings.Contains(csp, "script-src 'self'") {
			t.Errorf("GET %s: CSP %q", c.path, csp)
		}
		if h.Get("X-Frame-Options") != "DENY" || !strings.HasPrefix(h.Get("Strict-Transport-Security"), "max-age=") ||
			h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("GET %s: hardening headers missing: %v", c.path, h)
		}
	}
	for _, path := range []string{"/static/nope.js", "/static/web.go", "/static/.hidden.js", "/static/../web.go", "/c/", "/console/"} {
		code, _ := e.send(nil, nil, "GET", path, nil)
		if code != http.StatusNotFound && code != http.StatusBadRequest {
			t.Errorf("GET %s: got %d, want 404 or 400", path, code)
		}
	}
}

// TestPagesNoInlineCode: the CSP forbids inline scripts and styles, so the
// pages must have none; and scripts write API data as text, never HTML.
func TestPagesNoInlineCode(t *testing.T) {
	inline := []*regexp.Regexp{
		regexp.MustCompile(`<script(\s[^>]*)?>\s*[^<\s]`),              // a script with a body
		regexp.MustCompile(`<script(?:(?:\s+[a-z]+(="[^"]*")?)*)\s*>`), // checked below for src
		regexp.MustCompile(`(?i)\sstyle\s*=`),
		regexp.MustCompile(`(?i)<style`),
		regexp.MustCompile(`(?i)\son[a-z]+\s*=`),
		regexp.MustCompile(`(?i)javascript:`),
	}
	err := fs.WalkDir(web.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(web.FS, path)
		switch {
		case strings.HasSuffix(path, ".html"):
			for i, re := range inline {
				for _, m := range re.FindAll(b, -1) {
					if i == 1 && bytes.Contains(m, []byte(" src=")) {
						continue
					}
					t.Errorf("%s: inline code %q", path, m)
				}
			}
		case strings.HasSuffix(path, ".js"):
			for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
				if bytes.Contains(b, []byte(bad)) {
					t.Errorf("%s uses %s", path, bad)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestEnrollQR: the QR image of a live enrollment link is a PNG; an
// unknown link gets 404.
func TestEnrollQR(t *testing.T) {
	e := newEnv(t)
	a, err := e.g.Accounts().Create(context.Background(), gateway.NewUser{Name: "dave", Role: identity.RoleAgent})
	if err != nil {
		t.Fatal(err)
	}
	for range 8 { // more than the enrollment burst: valid links are not charged
		code, body := e.send(nil, nil, "GET", "/api/v1/enroll/"+a.EnrollToken+"/qr.png", nil)
		if code != 200 {
			t.Fatalf("qr.png: got %d %s", code, body)
		}
		img, err := png.Decode(bytes.NewReader(body))
		if err != nil || img.Bounds().Dx() < 200 {
			t.Fatalf("qr.png: %v %v", err, img.Bounds())
		}
	}
	if code, _ := e.send(nil, nil, "GET", "/api/v1/enroll/sge_nope/qr.png", nil); code != http.StatusNotFound {
		t.Errorf("unknown link: got %d, want 404", code)
	}
}

// browserLogin signs u in as a browser would: from the gateway's origin,
// asking for the cookie session. It returns a client holding the cookie
// and the session's CSRF token.
func (e *env) browserLogin(u *testUser) (*http.Client, string) {
	e.t.Helper()
	c := e.client()
	body, _ := json.Marshal(map[string]any{"user": u.name, "password": testPassword, "totp": u.code(), "browser": true})
	req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/login", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", e.srv.URL)
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != 200 {
		e.t.Fatalf("browser login of %s: %d %v", u.name, resp.StatusCode, out)
	}
	if tok, _ := out["token"].(string); tok != "" {
		e.t.Errorf("browser login answer carries the token: %v", out)
	}
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "__Host-sg_session" {
			cookie = ck
		}
	}
	if cookie == nil || !cookie.HttpOnly || !cookie.Secure || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/" || cookie.Domain != "" {
		e.t.Fatalf("session cookie %+v, want __Host- HttpOnly Secure SameSite=Strict Path=/ without Domain", cookie)
	}
	e.clock.Advance(30 * 1e9) // a code is accepted once
	csrf, _ := out["csrf_token"].(string)
	if csrf == "" {
		e.t.Fatalf("browser login answer has no csrf_token: %v", out)
	}
	return c, csrf
}

// TestCookieLoginOrigin: only the gateway's own pages may start a
// cookie session (no login CSRF); the CLI's bearer login is unchanged.
func TestCookieLoginOrigin(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("alice", identity.RoleAgent, "red")
	for _, origin := range []string{"", "https://evil.example", "http://" + strings.TrimPrefix(e.srv.URL, "https://")} {
		var opts []reqOpt
		if origin != "" {
			opts = append(opts, withHeader("Origin", origin))
		}
		code, body := e.send(nil, nil, "POST", "/api/v1/login",
			map[string]any{"user": "alice", "password": testPassword, "totp": u.code(), "browser": true}, opts...)
		if code != http.StatusForbidden {
			t.Errorf("browser login from origin %q: got %d %s, want 403", origin, code, body)
		}
	}
	c, csrf := e.browserLogin(u)
	code, body := e.send(c, nil, "GET", "/api/v1/me", nil)
	var me map[string]any
	json.Unmarshal(body, &me)
	if code != 200 || me["name"] != "alice" || me["csrf_token"] != csrf {
		t.Errorf("GET /api/v1/me with the cookie: %d %s, want alice and the session's csrf_token", code, body)
	}
	// A bearer request needs no CSRF token and is not given one.
	code, body = e.send(nil, u, "GET", "/api/v1/me", nil)
	if code != 200 || strings.Contains(string(body), "csrf_token") {
		t.Errorf("GET /api/v1/me with a bearer: %d %s", code, body)
	}
	e.do(u, "POST", "/api/v1/sessions", map[string]any{"customer": "x", "scopes": []string{"view"}, "duration": "30m"}, 201, nil)
	// Logout clears the cookie; the session is gone.
	if code, body := e.send(c, nil, "POST", "/api/v1/logout", "{}", withHeader("X-CSRF-Token", csrf)); code != 200 {
		t.Fatalf("logout: %d %s", code, body)
	}
	if code, _ := e.send(c, nil, "GET", "/api/v1/me", nil); code != http.StatusUnauthorized {
		t.Errorf("after logout: got %d, want 401", code)
	}
}

// TestCookieCSRF: every state-changing route refuses a cookie-authenticated
// request without the session's CSRF token, with a wrong one, and with
// another session's; and admits it with the right one. The routes come
// from the gateway's own table, so a new route is covered when it is
// added. Consent routes use their own per-link token (api_test.go checks
// them too); public POST routes must be listed here with why they need
// no token.
func TestCookieCSRF(t *testing.T) {
	e := newEnv(t)
	users := map[identity.Role]*testUser{
		identity.RoleAgent:      e.addUser("alice", identity.RoleAgent, "red"),
		identity.RoleSupervisor: e.addUser("sam", identity.RoleSupervisor, "red"),
		identity.RoleAuditor:    e.addUser("audrey", identity.RoleAuditor, ""),
		identity.RoleAdmin:      e.addUser("root", identity.RoleAdmin, ""),
	}
	e.addUser("target", identity.RoleAgent, "red")
	type browser struct {
		c    *http.Client
		csrf string
	}
	browsers := map[identity.Role]browser{}
	for r, u := range users {
		c, csrf := e.browserLogin(u)
		browsers[r] = browser{c, csrf}
	}
	other := browsers[identity.RoleAuditor].csrf // a valid token of another session

	publicPOST := map[string]string{
		"POST /api/v1/login":          "sets the cookie rather than using it; browser logins must come from our origin (TestCookieLoginOrigin)",
		"POST /api/v1/enroll/{token}": "authenticated by the one-time token in the path, never by a cookie",
	}
	var checked int
	for _, rt := range e.g.Routes() {
		if rt.Method == "GET" || rt.Method == "HEAD" {
			continue
		}
		key := rt.Method + " " + rt.Pattern
		switch {
		case rt.Public:
			if _, ok := publicPOST[key]; !ok {
				t.Errorf("%s is public and state-changing: say here why it needs no CSRF token", key)
			}
			continue
		case rt.Consent:
			s := e.newSession(users[identity.RoleAgent], []string{"view"}, "30m")
			cu := e.customer(s.token())
			if code, _ := cu.open(); code != 200 {
				t.Fatalf("opening consent link: %d", code)
			}
			path := strings.ReplaceAll(rt.Pattern, "{token}", s.token())
			for _, bad := range []string{"", "garbage", other} {
				code, body := e.send(cu.c, nil, "POST", path, `{"approve":true}`, withHeader("X-CSRF-Token", bad))
				if code != http.StatusForbidden {
					t.Errorf("%s with CSRF %q: got %d %s, want 403", key, bad, code, body)
				}
			}
			if st, _ := e.sessionState(users[identity.RoleAgent], s.ID); st != "requested" {
				t.Errorf("%s without CSRF changed the session to %s", key, st)
			}
			checked++
			continue
		}
		role := rt.Roles[0]
		b := browsers[role]
		path := rt.Pattern
		if strings.Contains(path, "{id}") {
			s := e.newSession(users[identity.RoleAgent], []string{"view"}, "30m")
			path = strings.ReplaceAll(path, "{id}", s.ID)
		}
		path = strings.ReplaceAll(path, "{name}", "target")
		for _, bad := range []string{"", "garbage", other} {
			if bad == other && role == identity.RoleAuditor {
				bad = browsers[identity.RoleAdmin].csrf
			}
			code, body := e.send(b.c, nil, rt.Method, path, "{}", withHeader("X-CSRF-Token", bad))
			if code != http.StatusForbidden || !strings.Contains(string(body), "CSRF") {
				t.Errorf("%s as %s by cookie with CSRF %q: got %d %s, want 403", key, role, bad, code, body)
			}
		}
		if rt.Pattern == "/api/v1/logout" {
			checked++
			continue // the right token would end this browser's session
		}
		code, body := e.send(b.c, nil, rt.Method, path, "{}", withHeader("X-CSRF-Token", b.csrf))
		if code == http.StatusUnauthorized || code == http.StatusForbidden || code >= 500 {
			t.Errorf("%s as %s by cookie with the right CSRF token: got %d %s, want admitted", key, role, code, body)
		}
		if rt.Pattern == "/api/v1/users/{name}/lock" && code == 200 {
			e.do(users[identity.RoleAdmin], "POST", "/api/v1/users/target/unlock", "{}", 200, nil)
		}
		checked++
	}
	if checked < 12 {
		t.Errorf("checked %d state-changing routes, want every one of them (at least 12)", checked)
	}
}

// TestCookieWebsocketOrigin: the sessions websocket, which a browser opens
// with the session cookie, admits the gateway's own pages and refuses a
// page of another origin (cross-site websocket hijacking).
func TestCookieWebsocketOrigin(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("alice", identity.RoleAgent, "red")
	c, _ := e.browserLogin(u)
	srvURL, _ := url.Parse(e.srv.URL)
	cookie := ""
	for _, ck := range c.Jar.Cookies(srvURL) {
		cookie += ck.Name + "=" + ck.Value
	}
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: e.mat.CAPool()}}
	wsURL := "wss://" + srvURL.Host + "/api/v1/sessions/watch"
	for _, tc := range []struct {
		origin string
		want   int
	}{
		{e.srv.URL, http.StatusSwitchingProtocols},
		{"https://evil.example", http.StatusForbidden},
	} {
		conn, resp, err := d.Dial(wsURL, http.Header{"Cookie": {cookie}, "Origin": {tc.origin}})
		if conn != nil {
			conn.Close()
		}
		if resp == nil || resp.StatusCode != tc.want {
			t.Errorf("websocket from %s: got %v %v, want %d", tc.origin, resp, err, tc.want)
		}
	}
}
