package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"supportgate/internal/proctest"
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
	screen := &syncBuffer{}
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
	agent := exec.Command(g.bin, "ssh", s.ID,
		"sleep "+marker+" & nohup sleep "+marker+" >/dev/null 2>&1 & setsid sleep "+marker+" & sleep "+marker)
	agent.Env = append(os.Environ(), "SUPPORTGATE_HOME="+alice)
	agentOut := &syncBuffer{}
	agent.Stdout, agent.Stderr = agentOut, agentOut
	agent.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // ssh runs as its child: stop both
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	agentDone := make(chan struct{})
	go func() { agent.Wait(); close(agentDone) }()
	t.Cleanup(func() {
		syscall.Kill(-agent.Process.Pid, syscall.SIGKILL)
		<-agentDone
	})
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
