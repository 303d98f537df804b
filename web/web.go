// Package web holds the gateway's pages and their assets, embedded in the
// binary: the customer consent page, the staff console and the enrollment
// page. Pages carry no inline script or style, which the gateway's CSP
// forbids; everything they show comes from the JSON API at run time and is
// written into the page as text, never as HTML.
package web

import "embed"

// FS holds the pages (*.html) and their assets (static/).
//
//go:embed *.html static
var FS embed.FS

// ContentSecurityPolicy is the policy every page is served with, by the
// gateway and by the review player: only the pages' own scripts and
// styles, no inline code, no framing, no plugins.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; media-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
