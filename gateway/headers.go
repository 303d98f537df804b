package gateway

import (
	"net/http"
	"path"
	"strings"

	"supportgate/web"
)

// hsts is the Strict-Transport-Security value, built once.
var hsts = []string{"max-age=63072000; includeSubDomains"}

// dated sets every answer's Date header from the gateway's clock rather
// than net/http's time.Now. The consent page and supportgate-assist take
// the gateway's time from it to count down the times in its JSON (link and
// box ends), which are on the gateway's clock: a session.SteadyClock that
// runs ahead of a wall clock set back.
func (g *Gateway) dated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", g.clock.Now().UTC().Format(http.TimeFormat))
		next.ServeHTTP(w, r)
	})
}

// secure sets the hardening headers of DESIGN.md section 6 on every
// response and refuses paths that are not canonical, so that routes are
// matched, and checked, on exactly the path the client sent.
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		web.SetSecurityHeaders(h)
		h["Strict-Transport-Security"] = hsts // shared; see web.SetSecurityHeaders
		if !canonical(r) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "path is not canonical"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// canonical reports whether the request path is clean: no dot segments,
// no doubled or trailing slashes, no percent-encoded slashes or dots.
func canonical(r *http.Request) bool {
	p := r.URL.Path
	if p == "" || p[0] != '/' {
		return false
	}
	if r.URL.RawPath != "" {
		return false // percent-encoded characters that change the path's meaning
	}
	if raw := r.URL.EscapedPath(); strings.Contains(strings.ToLower(raw), "%2e") {
		return false
	}
	return p == "/" || (path.Clean(p) == p && !strings.HasSuffix(p, "/"))
}

// redactPath hides consent and enrollment tokens when a path is logged.
func redactPath(p string) string {
	for _, prefix := range []string{"/c/", "/api/v1/consent/", "/api/v1/enroll/", "/enroll/"} {
		if rest, ok := strings.CutPrefix(p, prefix); ok {
			_, tail, _ := strings.Cut(rest, "/")
			if tail != "" {
				tail = "/" + tail
			}
			return prefix + "REDACTED" + tail
		}
	}
	return p
}
