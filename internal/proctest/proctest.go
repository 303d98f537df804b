// Package proctest finds processes by their command lines, for tests that
// start processes (directly or through a helper's shell) and must see
// that none outlive what should end them.
package proctest

import (
	"os"
	"strconv"
)

// Matching returns the ids of the processes whose command line (the
// NUL-separated bytes of /proc/PID/cmdline) satisfies match. It reads
// /proc, so it finds nothing on other systems.
func Matching(match func(cmdline []byte) bool) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && match(b) {
			pids = append(pids, pid)
		}
	}
	return pids
}
