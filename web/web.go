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
