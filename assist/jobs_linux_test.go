package assist

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"supportgate/internal/proctest"
	"supportgate/internal/syncbuf"
)

// sshTestEndpoint is an endpoint with a shell consented, reached over a
// pipe with ServeSSH, as the gateway would.
type sshTestEndpoint struct {
	e      *Endpoint
	client *ssh.Client
}

func startSSHTestEndpoint(t *testing.T) *sshTestEndpoint {
	t.Helper()
	te := startEndpointWith(t, []string{"shell"}, func(c *EndpointConfig) { c.Shell = "/bin/sh" })
	e, gwSigner, host := te.e, te.gw, te.host
	a, b := net.Pipe()
	var served sync.WaitGroup
	served.Add(1)
	go func() { defer served.Done(); e.ServeSSH(b) }()
	cc, chans, reqs, err := ssh.NewClientConn(a, "endpoint", &ssh.ClientConfig{
		User: "gateway", Auth: []ssh.AuthMethod{ssh.PublicKeys(gwSigner)}, HostKeyCallback: ssh.FixedHostKey(host.PublicKey()),
	})
	if err != nil {
		t.Fatal(err)
	}
	client := ssh.NewClient(cc, chans, reqs)
	t.Cleanup(func() { client.Close(); served.Wait() })
	return &sshTestEndpoint{e: e, client: client}
}

func waitOutput(t *testing.T, out *syncbuf.Buffer, text string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), text); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the output:\n%s", text, out)
		}
	}
}

// marked lists the processes whose command line holds marker.
func marked(marker string) []int {
	return proctest.Matching(func(cmdline []byte) bool { return bytes.Contains(cmdline, []byte(marker)) })
}

// sleepMarker is an argument of sleep that no other process has: a test
// finds the processes it started by it, and kills what is left.
func sleepMarker(t *testing.T) string {
	n, _ := rand.Int(rand.Reader, big.NewInt(1e9))
	m := fmt.Sprintf("7%09d", n)
	t.Cleanup(func() {
		for _, pid := range marked(m) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return m
}

// backgroundJobs starts, in the shell, jobs that outlive it: a plain
// background job, nohup, setsid, and a double fork into a new session.
func backgroundJobs(m string) string {
	return fmt.Sprintf("sleep %s1 & nohup sleep %s2 >/dev/null 2>&1 & setsid sleep %s3 & (setsid sleep %s4 &) ; echo STAR''TED", m, m, m, m)
}

func checkNoneLeft(t *testing.T, m string) {
	t.Helper()
	if left := marked(m); len(left) > 0 {
		t.Errorf("processes the endpoint started outlive it: %v", left)
	}
}

// closeWithin closes e and fails the test if Close takes longer than d;
// it then kills what the shells left, so that Close can return.
func closeWithin(t *testing.T, e *Endpoint, d time.Duration, m string) {
	t.Helper()
	closed := make(chan struct{})
	go func() { e.Close(); close(closed) }()
	select {
	case <-closed:
		return
	case <-time.After(d):
	}
	t.Errorf("Close still blocked after %v; left: %v", d, marked(m))
	for _, pid := range marked(m) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	<-closed
}

// startScript runs script and then then on te, typed into a PTY shell
// (mode "pty") or as a command ("exec"), and returns the session and its
// output.
func startScript(t *testing.T, te *sshTestEndpoint, mode, script, then string) (*ssh.Session, *syncbuf.Buffer) {
	t.Helper()
	s, err := te.client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out := &syncbuf.Buffer{}
	s.Stdout, s.Stderr = out, out
	if mode == "pty" {
		if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
			t.Fatal(err)
		}
		in, _ := s.StdinPipe()
		if err := s.Shell(); err != nil {
			t.Fatal(err)
		}
		io.WriteString(in, script+"; "+then+"\n")
	} else if err := s.Start(script + "; " + then); err != nil {
		t.Fatal(err)
	}
	return s, out
}

// TestCloseEndsBackgroundJobs: whatever the agent started in a shell or a
// command, in the background, in a new session or through a double fork,
// Close kills it, and returns promptly although a job kept the PTY open.
func TestCloseEndsBackgroundJobs(t *testing.T) {
	for _, mode := range []string{"pty", "exec"} {
		t.Run(mode, func(t *testing.T) {
			te := startSSHTestEndpoint(t)
			m := sleepMarker(t)
			s, out := startScript(t, te, mode, backgroundJobs(m), "sleep "+m+"5")
			defer s.Close()
			waitOutput(t, out, "STARTED")
			for deadline := time.Now().Add(10 * time.Second); len(marked(m)) < 4 && time.Now().Before(deadline); {
				time.Sleep(5 * time.Millisecond)
			}
			if n := len(marked(m)); n < 4 {
				t.Fatalf("%d jobs running, want at least 4", n)
			}
			closeWithin(t, te.e, 10*time.Second, m)
			checkNoneLeft(t, m)
		})
	}
}

// TestShellEndEndsItsJobs: a shell that exits ends its session at once,
// although a background job still holds the PTY, and the job goes with it.
func TestShellEndEndsItsJobs(t *testing.T) {
	for _, mode := range []string{"pty", "exec"} {
		t.Run(mode, func(t *testing.T) {
			te := startSSHTestEndpoint(t)
			defer te.e.Close()
			m := sleepMarker(t)
			s, _ := startScript(t, te, mode, backgroundJobs(m), "exit 3")
			defer s.Close()
			done := make(chan error, 1)
			go func() { done <- s.Wait() }()
			select {
			case err := <-done:
				if ee, ok := err.(*ssh.ExitError); !ok || ee.ExitStatus() != 3 {
					t.Errorf("session ended with %v, want exit status 3", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("session still open 10 s after its shell exited; left: %v", marked(m))
			}
			for deadline := time.Now().Add(5 * time.Second); len(marked(m)) > 0 && time.Now().Before(deadline); {
				time.Sleep(5 * time.Millisecond)
			}
			checkNoneLeft(t, m)
			if st := te.e.Status(); st.Shells != 0 {
				t.Errorf("%d shells running, want 0", st.Shells)
			}
		})
	}
}

// TestSweepReapsZombies: a job reparented to the helper (a subreaper) that
// exits on its own is waited for, not left a zombie.
func TestSweepReapsZombies(t *testing.T) {
	te := startSSHTestEndpoint(t)
	defer te.e.Close()
	s, err := te.client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The shell forks a child that forks a grandchild and exits: the
	// grandchild is reparented to the helper, exits a moment later, and
	// must be reaped when the shell's tree is swept.
	out, err := s.CombinedOutput(`(sh -c 'echo $$; sleep 0.2' &) ; sleep 0.5`)
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("pid %q: %v", out, err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			t.Fatalf("process %d still there (a zombie not reaped?): %s", pid, st)
		}
	}
}
