package assist

import (
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestSweepSparesReusedSessionID: once a shell is reaped and its session
// emptied, its pid, which was its session id, may be given to any process
// of the customer's. A later sweep (Close's) must not take that process
// for the shell's. The test gives the old pid to an unrelated session
// leader through /proc/sys/kernel/ns_last_pid (root only).
func TestSweepSparesReusedSessionID(t *testing.T) {
	const lastPid = "/proc/sys/kernel/ns_last_pid"
	if f, err := os.OpenFile(lastPid, os.O_WRONLY, 0); err != nil {
		t.Skipf("cannot choose pids here (%v): the test needs root", err)
	} else {
		f.Close()
	}
	j := newJobs()
	j.mu.Lock()
	marker := j.markerLocked()
	shell := exec.Command("/bin/sh", "-c", "exit 0")
	shell.Env = []string{jobMarkerEnv + "=" + marker}
	shell.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := shell.Start(); err != nil {
		j.mu.Unlock()
		t.Fatal(err)
	}
	old := shell.Process.Pid
	j.startedLocked(marker, old)
	j.mu.Unlock()
	shell.Wait()
	j.waited(marker)
	if left := j.sweep([]string{marker}); left != 0 {
		t.Fatalf("%d left of a shell that exited", left)
	}

	// An unrelated session leader with the old shell's pid: try a few
	// times, as any fork on the machine may take the pid first.
	var other *exec.Cmd
	for try := 0; try < 20 && other == nil; try++ {
		if err := os.WriteFile(lastPid, []byte(strconv.Itoa(old-1)), 0); err != nil {
			t.Skipf("cannot choose pids here: %v", err)
		}
		c := exec.Command("/bin/sleep", "30")
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		if c.Process.Pid == old {
			other = c
			break
		}
		c.Process.Kill()
		c.Wait()
	}
	if other == nil {
		t.Skip("could not get the old pid back (the machine forks too much)")
	}
	done := make(chan error, 1)
	go func() { done <- other.Wait() }()

	j.sweep(nil) // what Close does
	select {
	case err := <-done:
		t.Fatalf("an unrelated process with the old shell's pid %d was killed: %v", old, err)
	case <-time.After(200 * time.Millisecond):
	}
	other.Process.Kill()
	<-done
}
