package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"supportgate/internal/proctest"
	"supportgate/internal/syncbuf"
)

// TestE2EHelperTerminalClosed: the customer closes the terminal window the
// helper runs in while the agent's command has left jobs behind (a plain
// background job, a nohup one and one in a session of its own). The kernel
// hangs the helper up (SIGHUP); like Ctrl-C, that must revoke the session
// and end every process the agent's shell started. With SIGHUP's default
// action the helper died on the spot: the session stayed active and the
// jobs ran on as the customer.
func TestE2EHelperTerminalClosed(t *testing.T) {
	g, alice, assistBin := sshE2E(t)
	s := g.newSession(alice, "shell", "30m")

	// The helper on a terminal of its own, as the customer runs it: session
	// leader with the terminal as its controlling terminal, so that the
	// kernel sends it SIGHUP when the terminal's other end closes.
	helper := exec.Command(assistBin, "--ca", filepath.Join(g.data, "ca.pem"), "--yes", s.ConsentURL)
	helper.Dir = t.TempDir()
	window, err := pty.Start(helper)
	if err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var helperErr error
	go func() { helperErr = helper.Wait(); close(exited) }()
	t.Cleanup(func() {
		window.Close()
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			helper.Process.Kill()
			<-exited
		}
	})
	screen := &syncbuf.Buffer{}
	go io.Copy(screen, window) // what the window shows; ends when it closes
	waitText(t, screen, "Connected:", 30*time.Second)

	marker := fmt.Sprintf("6%d", time.Now().UnixNano()%1e9+1e9) // no other process has it
	left := func() []int {
		want := []byte("sleep\x00" + marker + "\x00")
		return proctest.Matching(func(cmdline []byte) bool { return bytes.Equal(cmdline, want) })
	}
	t.Cleanup(func() {
		for _, pid := range left() {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	agentOut, agentDone := startAgentCommand(t, g, alice, s.ID,
		"sleep "+marker+" & nohup sleep "+marker+" >/dev/null 2>&1 & setsid sleep "+marker+" & sleep "+marker)
	for deadline := time.Now().Add(30 * time.Second); len(left()) < 4; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the agent's jobs did not start (%v running); ssh said:\n%s", left(), agentOut.String())
		}
	}

	window.Close() // the customer closes the window
	select {
	case <-exited:
		var ee *exec.ExitError
		if errors.As(helperErr, &ee) && ee.Sys().(syscall.WaitStatus).Signaled() {
			t.Errorf("the hang-up killed the helper (%v) instead of stopping it; it printed:\n%s", helperErr, screen.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("the helper still runs 15 s after its terminal closed:\n%s", screen.String())
	}
	if got := g.waitEnded(alice, s.ID, 10*time.Second); got.State != "ended" || got.EndReason != "revoked" {
		t.Errorf("session after the window closed: %s/%s, want ended/revoked", got.State, got.EndReason)
	}
	if pids := left(); len(pids) > 0 {
		t.Errorf("the agent's jobs outlive the helper: %v", pids)
	}
	select {
	case <-agentDone:
	case <-time.After(10 * time.Second):
		t.Errorf("the agent's ssh still runs 10 s after the helper stopped:\n%s", agentOut.String())
	}
}

// startAgentCommand runs `supportgate ssh ID COMMAND` as the agent whose
// home is home, until the test ends; it returns the command's output and a
// channel closed when it exits.
func startAgentCommand(t *testing.T, g *gw, home, id, command string) (*syncbuf.Buffer, <-chan struct{}) {
	t.Helper()
	agent := exec.Command(g.bin, "ssh", id, command)
	agent.Env = append(os.Environ(), "SUPPORTGATE_HOME="+home)
	out := &syncbuf.Buffer{}
	agent.Stdout, agent.Stderr = out, out
	agent.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // ssh runs as its child: stop both
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { agent.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-agent.Process.Pid, syscall.SIGKILL)
		<-done
	})
	return out, done
}

// TestE2EHelperCtrlZ: the customer runs the helper from an interactive
// shell and presses Ctrl-Z, a common reflex to make something stop. The
// helper must not stop: stopped, it could neither revoke the session nor
// end the agent's command, which would write on as the customer past the
// time box (it did, until fg). It says how to end the session instead,
// and the time box ends the agent's command.
func TestE2EHelperCtrlZ(t *testing.T) {
	g, alice, assistBin := sshE2E(t)
	s := g.newSession(alice, "shell", "15s")
	sh := exec.Command("bash", "--norc", "--noprofile", "-i") // job control needs an interactive shell
	sh.Env = append(os.Environ(), "PS1=$ ")
	window, err := pty.StartWithSize(sh, &pty.Winsize{Rows: 40, Cols: 200})
	if err != nil {
		t.Fatal(err)
	}
	screen := &syncbuf.Buffer{}
	go io.Copy(screen, window)
	t.Cleanup(func() { window.Close(); sh.Process.Kill(); sh.Wait() })
	fmt.Fprintf(window, "%s --ca %s --yes '%s'\n", assistBin, filepath.Join(g.data, "ca.pem"), s.ConsentURL)
	waitText(t, screen, "Connected:", 30*time.Second)

	file := filepath.Join(t.TempDir(), "agent-writes")
	startAgentCommand(t, g, alice, s.ID, "while :; do date +%s%N >> "+file+"; sleep 0.2; done")
	size := func() int64 {
		fi, err := os.Stat(file)
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	for deadline := time.Now().Add(20 * time.Second); size() == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the agent's command never ran")
		}
	}
	window.Write([]byte{0x1a}) // Ctrl-Z
	waitText(t, screen, "Ctrl-Z does not pause a support session", 5*time.Second)
	if strings.Contains(screen.String(), "Stopped") {
		t.Fatalf("the shell stopped the helper:\n%s", screen.String())
	}
	if got := g.waitEnded(alice, s.ID, 30*time.Second); got.State != "ended" {
		t.Fatalf("session still %s", got.State)
	}
	waitText(t, screen, "session ended", 10*time.Second)
	before := size()
	time.Sleep(2 * time.Second)
	if after := size(); after > before {
		t.Errorf("after the session ended the agent's command still runs as the customer: %d -> %d bytes", before, after)
	}
}

// TestE2EHelperStdoutGone: the customer pipes the helper's output into a
// pager and quits it, or the tee it wrote to dies. The next status line
// cannot be written; the helper must stop the session as when its
// terminal closes, not die of SIGPIPE with the session open (it did).
func TestE2EHelperStdoutGone(t *testing.T) {
	g, alice, assistBin := sshE2E(t)
	s := g.newSession(alice, "shell", "30m")
	helper := exec.Command(assistBin, "--ca", filepath.Join(g.data, "ca.pem"), "--yes", s.ConsentURL)
	stdout, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- helper.Wait() }()
	for r := bufio.NewReader(stdout); ; {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("helper output ended before it connected: %v", err)
		}
		if strings.Contains(line, "Connected:") {
			break
		}
	}
	stdout.Close() // the pager went away
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled() {
			t.Errorf("the helper died of %v with the session open", err)
		}
	case <-time.After(20 * time.Second):
		helper.Process.Kill()
		<-exited
		t.Fatal("the helper still runs 20 s after its stdout went away")
	}
	if got := g.waitEnded(alice, s.ID, 10*time.Second); got.State != "ended" || got.EndReason != "revoked" {
		t.Errorf("session after the helper's stdout went away: %s/%s, want ended/revoked", got.State, got.EndReason)
	}
}

// TestE2EHelperTwoHangups: a terminal window closing under a shell sends
// the helper two hang-ups (the shell's and the kernel's). The second used
// to find SIGHUP's default action back and kill the helper in the middle
// of its revoke and sweep.
func TestE2EHelperTwoHangups(t *testing.T) {
	g, alice, assistBin := sshE2E(t)
	s := g.newSession(alice, "shell", "30m")
	helper := exec.Command(assistBin, "--ca", filepath.Join(g.data, "ca.pem"), "--yes", s.ConsentURL)
	out := &syncbuf.Buffer{}
	helper.Stdout, helper.Stderr = out, out
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- helper.Wait() }()
	waitText(t, out, "Connected:", 30*time.Second)
	helper.Process.Signal(syscall.SIGHUP)
	time.Sleep(20 * time.Millisecond) // the helper is revoking and sweeping
	helper.Process.Signal(syscall.SIGHUP)
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled() {
			t.Errorf("the second hang-up killed the helper (%v):\n%s", err, out.String())
		}
	case <-time.After(20 * time.Second):
		helper.Process.Kill()
		<-exited
		t.Fatalf("the helper still runs 20 s after two hang-ups:\n%s", out.String())
	}
	if got := g.waitEnded(alice, s.ID, 10*time.Second); got.State != "ended" || got.EndReason != "revoked" {
		t.Errorf("session after two hang-ups: %s/%s, want ended/revoked", got.State, got.EndReason)
	}
}

// TestE2EHelperShellsSignals: the customer's shells get the signal
// dispositions a terminal would give them. The helper catches SIGPIPE and
// SIGTSTP for itself; had it ignored them, or SIGTTIN and SIGTTOU, its
// shells would inherit that (ignored signals survive exec) and job control
// in them would break.
func TestE2EHelperShellsSignals(t *testing.T) {
	g, alice, assistBin := sshE2E(t)
	s := g.newSession(alice, "shell", "30m")
	startHelper(t, g, assistBin, s.ConsentURL)
	var line string
	for end := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out, _, code := g.run(alice, "", "ssh", s.ID, "grep SigIgn /proc/self/status")
		if code == 0 && strings.HasPrefix(out, "SigIgn:") {
			line = out
			break
		}
		if time.Now().After(end) {
			t.Fatalf("supportgate ssh: exit %d, %q", code, out)
		}
	}
	mask, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(line, "SigIgn:")), 16, 64)
	if err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGPIPE, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGHUP} {
		if mask&(1<<(sig-1)) != 0 {
			t.Errorf("the customer's shell starts with %v ignored (SigIgn %#x)", sig, mask)
		}
	}
}
