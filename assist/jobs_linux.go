package assist

import (
	"bytes"
	"os"
	"slices"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

var subreaper sync.Once

// becomeSubreaper makes the helper the parent of its shells' orphans, so
// that sweeps find them; it is best effort (the sweep still finds jobs by
// their session and environment marker).
func becomeSubreaper() {
	subreaper.Do(func() { unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) })
}

// proc is what a sweep reads of a process in /proc/PID/stat.
type proc struct {
	procKey
	ppid, sid int
	state     byte
}

// readProcs lists the processes of the system.
func readProcs() []proc {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	ps := make([]proc, 0, len(names))
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + n + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp session ... starttime (field 22);
		// comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(b[i+1:])
		if len(f) < 20 || len(f[0]) != 1 {
			continue
		}
		ppid, _ := strconv.Atoi(string(f[1]))
		sid, _ := strconv.Atoi(string(f[3]))
		start, _ := strconv.ParseUint(string(f[19]), 10, 64)
		ps = append(ps, proc{procKey: procKey{pid, start}, ppid: ppid, sid: sid, state: f[0][0]})
	}
	return ps
}

// envMarker returns the value of jobMarkerEnv in pid's environment, as it
// was when the process started ("" for zombies and others' processes).
func envMarker(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return ""
	}
	for kv := range bytes.SplitSeq(b, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte(jobMarkerEnv+"=")); ok {
			return string(v)
		}
	}
	return ""
}

// sweepOnce kills, once, every live process of the shells with markers
// (every shell when nil), reaps the zombies among them that are the
// helper's children, and returns how many it killed.
func (j *jobs) sweepOnce(markers []string) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	want := map[string]bool{}
	bySid := map[int]string{}
	roots := map[int]string{}
	waiting := map[int]bool{}
	for m, s := range j.shells {
		if s.waiting {
			waiting[s.pid] = true
		}
		if markers != nil && !slices.Contains(markers, m) {
			continue
		}
		want[m] = true
		if !s.emptied {
			bySid[s.pid] = m // a session id is not reused while a process is in it
		}
		if s.waiting {
			roots[s.pid] = m // its pid is its own until os/exec waited for it
		}
	}
	if len(want) == 0 {
		return 0
	}
	self := os.Getpid()
	ps := readProcs()
	// Which shell each process belongs to: seeds first, then down the
	// parent chains until nothing changes.
	owner := map[int]string{}
	children := map[int][]int{}
	for _, p := range ps {
		if p.pid == self {
			continue
		}
		children[p.ppid] = append(children[p.ppid], p.pid)
		m, ok := j.known[p.procKey]
		if !ok {
			m, ok = roots[p.pid]
		}
		if !ok {
			m, ok = bySid[p.sid]
		}
		if !ok && p.ppid == self && p.state != 'Z' {
			// An orphan reparented to the helper: whose is it?
			if em := envMarker(p.pid); want[em] {
				m, ok = em, true
			}
		}
		if ok && want[m] {
			owner[p.pid] = m
		}
	}
	queue := make([]int, 0, len(owner))
	for pid := range owner {
		queue = append(queue, pid)
	}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range children[pid] {
			if _, ok := owner[c]; !ok {
				owner[c] = owner[pid]
				queue = append(queue, c)
			}
		}
	}
	live := map[procKey]bool{}
	killed := 0
	for _, p := range ps {
		live[p.procKey] = true
		m, ok := owner[p.pid]
		if !ok {
			continue
		}
		j.known[p.procKey] = m
		switch {
		case p.state == 'Z' || p.state == 'X':
			// Dead: reap it if it is the helper's (reparented) child,
			// unless os/exec is to wait for it.
			if p.ppid == self && !waiting[p.pid] {
				var ws unix.WaitStatus
				unix.Wait4(p.pid, &ws, unix.WNOHANG, nil)
				delete(j.known, p.procKey)
			}
		default:
			if unix.Kill(p.pid, unix.SIGKILL) == nil {
				killed++
			}
		}
	}
	for k := range j.known {
		if !live[k] {
			delete(j.known, k)
		}
	}
	return killed
}
