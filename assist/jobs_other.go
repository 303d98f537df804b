//go:build !linux

package assist

import (
	"slices"
	"syscall"
)

// becomeSubreaper is Linux's; elsewhere orphans go to init.
func becomeSubreaper() {}

// sweepOnce kills the process group of each shell with markers (every
// shell when nil): best effort, since a job in another process group or
// session escapes it. It reports none left.
func (j *jobs) sweepOnce(markers []string) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	for m, s := range j.shells {
		if markers == nil || slices.Contains(markers, m) {
			syscall.Kill(-s.pid, syscall.SIGKILL)
		}
	}
	return 0
}
