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
func SetSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
	h.Set("Cache-Control", "no-store")
}
