package assist

import (
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strconv"
	"sync"
	"time"
)

// jobs are the processes an endpoint started: its shells and commands and
// whatever they started in turn, which the endpoint kills when each shell
// ends (its own tree) and when it closes (every tree).
//
// On Linux the helper is a child subreaper (PR_SET_CHILD_SUBREAPER), so a
// job that outlives its shell (a background job, nohup, setsid, a double
// fork) is reparented to the helper instead of init, and found by walking
// /proc: a process belongs to a shell when it descends from it (its
// parent chain), is in its session (shells and commands are started with
// Setsid), or carries the shell's marker in its environment (jobMarkerEnv,
// which a double fork into a new session keeps); the helper waits for the
// zombies of those reparented to it. Killing repeats until none is left,
// since a job can fork while it is being killed. Sweeps run when a shell
// ends and at Close only: a reparented job that exits on its own while
// its shell runs stays a zombie until then.
//
// What still escapes: a process that leaves the helper's tree, session
// and environment marker all at once before a sweep sees it (env -i
// setsid -f, or a double fork that clears its environment); one handed to
// another process to start (systemd-run --user, a user crontab or at job,
// a terminal multiplexer server started elsewhere, ssh to another host);
// and anything a process running as the customer may persist (a changed
// ~/.bashrc, an autostart entry). That is the reach of shell access as the
// customer's own user, which the customer consented to; the gateway's
// recording holds what the shell printed (a terminal echoes what is typed)
// and everything sent to a shell or command without a terminal. Elsewhere than Linux only each
// shell's process group is killed (see jobs_other.go).
type jobs struct {
	token string // this endpoint's marker prefix

	mu     sync.Mutex // guards n, shells, known; held across starting a shell and across one sweep pass
	n      int
	shells map[string]*jobShell // by marker, every shell started, running or not
	known  map[procKey]string   // processes seen to belong to a shell, with its marker
}

// jobShell is one shell or command the endpoint started.
type jobShell struct {
	pid     int  // its process id, which is also its session id
	waiting bool // os/exec has not waited for it yet: never reaped here
	// emptied: reaped, and a sweep then found nothing left of it. Linux
	// does not reuse a pid while a process has it as its session id, so
	// the session id names the shell's processes only until then; after,
	// the pid may be any process's, and sweeps go by known alone.
	emptied bool
}

// procKey names a process across pid reuse.
type procKey struct {
	pid   int
	start uint64 // start time, in clock ticks after boot
}

// jobMarkerEnv is set in the environment of every shell and command, to
// this endpoint's marker for it.
const jobMarkerEnv = "SUPPORTGATE_ASSIST_JOB"

// How long a sweep keeps killing before it gives up, and how long the
// endpoint then waits for the output of a shell whose tree was killed.
const (
	sweepFor  = 5 * time.Second
	drainWait = 2 * time.Second
)

func newJobs() *jobs {
	b := make([]byte, 8)
	rand.Read(b)
	return &jobs{token: hex.EncodeToString(b), shells: map[string]*jobShell{}, known: map[procKey]string{}}
}

// markerLocked returns a new shell's marker; call with j.mu held.
func (j *jobs) markerLocked() string {
	j.n++
	return j.token + "." + strconv.Itoa(j.n)
}

// startedLocked records that the shell with marker runs as pid.
func (j *jobs) startedLocked(marker string, pid int) {
	j.shells[marker] = &jobShell{pid: pid, waiting: true}
}

// waited records that os/exec has waited for the shell with marker.
func (j *jobs) waited(marker string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if s := j.shells[marker]; s != nil {
		s.waiting = false
	}
}

// sweep kills the processes of the shells with the given markers (all
// shells when markers is nil) until none is left or sweepFor passes, and
// reaps those reparented to the helper. It reports how many are left.
func (j *jobs) sweep(markers []string) int {
	deadline := time.Now().Add(sweepFor)
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		left := j.sweepOnce(markers)
		if left == 0 {
			j.emptied(markers)
		}
		if left == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(wait)
	}
}

// emptied marks the reaped shells with markers (all when nil), found
// without processes by a sweep, as no longer owning their session ids.
func (j *jobs) emptied(markers []string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for m, s := range j.shells {
		if !s.waiting && (markers == nil || slices.Contains(markers, m)) {
			s.emptied = true
		}
	}
}
