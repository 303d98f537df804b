// Package web holds the gateway's pages and their assets, embedded in the
// binary: the customer consent page, the staff console and the enrollment
// page. Pages carry no inline script or style, which the gateway's CSP
// forbids; everything they show comes from the JSON API at run time and is
// written into the page as text, never as HTML.
package web

import (
	"embed"
	"net/http"
)

// FS holds the pages (*.html) and their assets (static/).
//
//go:embed *.html static
var FS embed.FS

// ContentSecurityPolicy is the policy every page is served with, by the
// gateway and by the review player: only the pages' own scripts and
// styles, no inline code, no framing, no plugins.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; media-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// SetSecurityHeaders sets the hardening headers every page and API answer
// carries (DESIGN.md section 6): the CSP, no framing, no sniffing, no
// referrer, same-origin isolation, no caching, no powerful features.
// The gateway adds HSTS; the review player, on plain loopback HTTP, cannot.
//
// It runs for every response, so the values are built once and shared
// between responses: each slice is full (len == cap), so an Add appends
// to a copy, and nothing writes into them.
func SetSecurityHeaders(h http.Header) {
	for _, sh := range securityHeaders {
		h[sh.key] = sh.value
	}
}

// securityHeaders are what SetSecurityHeaders sets: canonical keys, values
// built once.
var securityHeaders = func() []header {
	var out []header
	for _, kv := range [][2]string{
		{"Content-Security-Policy", ContentSecurityPolicy},
		{"X-Frame-Options", "DENY"},
		{"X-Content-Type-Options", "nosniff"},
		{"Referrer-Policy", "no-referrer"},
		{"Cross-Origin-Opener-Policy", "same-origin"},
		{"Cross-Origin-Resource-Policy", "same-origin"},
		{"Permissions-Policy", "camera=(), microphone=(), geolocation=()"},
		{"Cache-Control", "no-store"},
	} {
		out = append(out, header{http.CanonicalHeaderKey(kv[0]), []string{kv[1]}})
	}
	return out
}()

type header struct {
	key   string
	value []string
}
