// Package gctune sets the garbage collector the way `supportgate serve`
// runs it, so that the gateway's benchmarks measure the same thing.
//
// The gateway's live heap is small (about 1 KB per session, a few MB in
// all without media) and it allocates per request, so at Go's default
// GOGC of 100 it collects often: a tenth of the CPU of creating and
// approving sessions went to the collector. At 200 a collection comes
// after the heap grows by twice the live heap instead of once, which
// costs that much more memory at peak and saves about a tenth of the CPU
// per session (bench/README.md, "Garbage collector").
package gctune

import (
	"os"
	"runtime/debug"
)

// Percent is the GOGC that serve runs with unless GOGC is set.
const Percent = 200

// Apply sets the collector's GOGC to Percent, unless the GOGC environment
// variable is set, which then stands. It returns a func that restores the
// percent in force before, and the percent now in force (-1 when GOGC
// left it to the environment).
func Apply() (restore func(), percent int) {
	if _, set := os.LookupEnv("GOGC"); set {
		return func() {}, -1
	}
	prev := debug.SetGCPercent(Percent)
	return func() { debug.SetGCPercent(prev) }, Percent
}
