package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"supportgate/internal/realpeer"
	"supportgate/internal/syncbuf"
)

// sshE2E starts a gateway (default 15 min consent TTL: a loaded machine
// has time), logs in the agent alice and builds the helper, before any
// session exists, as a customer would have it.
func sshE2E(t *testing.T) (g *gw, alice, assistBin string) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	realpeer.Require(t, "ssh")
	g = newGW(t, `{"min_duration": "1s"}`)
	alice = g.teamUser("alice", "agent", "red")
	assistBin = filepath.Join(t.TempDir(), "supportgate-assist")
	if out, err := exec.Command("go", "build", "-o", assistBin, "../supportgate-assist").CombinedOutput(); err != nil {
		t.Fatalf("building supportgate-assist: %v\n%s", err, out)
	}
	return g, alice, assistBin
}

// startHelper runs the helper binary assistBin on the session's link,
// approving it, and waits until the tunnel is up.
func startHelper(t *testing.T, g *gw, assistBin, link string) (*exec.Cmd, *syncbuf.Buffer) {
	t.Helper()
	helper := exec.Command(assistBin, "--ca", filepath.Join(g.data, "ca.pem"), "--yes", link)
	out := &syncbuf.Buffer{}
	helper.Stdout, helper.Stderr = out, out
	helper.Dir = t.TempDir()
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Ctrl-C, as a customer would: the helper revokes and kills what
		// its shells started. Killed outright, it would leave them running.
		helper.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { helper.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			helper.Process.Kill()
			<-done
		}
	})
	waitText(t, out, "Connected:", 30*time.Second)
	return helper, out
}

// waitText waits until out holds text.
func waitText(t *testing.T, out *syncbuf.Buffer, text string, limit time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(limit); !strings.Contains(out.String(), text); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never saw %q in:\n%s", text, out.String())
		}
	}
}

// sshUntil runs `supportgate ssh SESSION CMD` until it prints want, for at
// most limit, and returns its stderr.
func sshUntil(t *testing.T, g *gw, home, id, cmd, want string, limit time.Duration) string {
	t.Helper()
	var out, errOut string
	var code int
	for end := time.Now().Add(limit); ; time.Sleep(200 * time.Millisecond) {
		out, errOut, code = g.run(home, "", "ssh", id, cmd)
		if code == 0 && out == want || time.Now().After(end) {
			break
		}
	}
	if code != 0 || out != want {
		t.Fatalf("supportgate ssh %s: exit %d, stdout %q, stderr %q", cmd, code, out, errOut)
	}
	return errOut
}

// TestE2ESSHAfterRestart kills the gateway with SIGKILL while a helper's
// tunnel is up and restarts it: the gateway takes the tunnel back from its
// store, the helper rejoins when it is in contact again, and the agent's
// shell works with nothing asked of the customer.
func TestE2ESSHAfterRestart(t *testing.T) {
	g, alice, assistBin := sshE2E(t)
	s := g.newSession(alice, "shell", "30m")
	_, helperOut := startHelper(t, g, assistBin, s.ConsentURL)
	sshUntil(t, g, alice, s.ID, "echo before-$((6*7))", "before-42\n", 20*time.Second)

	g.kill()
	waitText(t, helperOut, "lost contact with the gateway", 20*time.Second)
	g.start()
	waitText(t, helperOut, "in contact with the gateway again", 30*time.Second)
	sshUntil(t, g, alice, s.ID, "echo after-$((6*7))", "after-42\n", 30*time.Second)
	if strings.Contains(helperOut.String(), "closed the tunnel") {
		t.Errorf("the helper closed its tunnel:\n%s", helperOut.String())
	}
	export := g.mustRun("", "", "audit", "export", "--data", g.data)
	if !strings.Contains(export, `"assist.restored"`) || !strings.Contains(export, s.ID) {
		t.Errorf("audit export has no assist.restored for %s", s.ID)
	}
}

// TestE2ESSH drives the real binaries: login, a shell session approved by
// the real supportgate-assist, `supportgate ssh` wrapping OpenSSH, and the
// recording that `supportgate verify` accepts once the customer ends it.
func TestE2ESSH(t *testing.T) {
	g, alice, assistBin := sshE2E(t)
	s := g.newSession(alice, "shell", "30m")
	helper, helperOut := startHelper(t, g, assistBin, s.ConsentURL)
	errOut := sshUntil(t, g, alice, s.ID, "echo via-bastion-$((20+22))", "via-bastion-42\n", 20*time.Second)
	if !strings.Contains(errOut, "This session is recorded") {
		t.Errorf("no recording banner on stderr: %q", errOut)
	}
	printed := g.mustRun(alice, "", "ssh", "--print", s.ID, "-L", "8080:localhost:80", "uptime")
	if !strings.Contains(printed, "CertificateFile=") || !strings.Contains(printed, "-p "+strings.Split(g.sshAddr, ":")[1]) ||
		!strings.HasSuffix(strings.TrimSpace(printed), "-L 8080:localhost:80 localhost uptime") {
		t.Errorf("ssh --print: %q", printed)
	}

	// The helper says who uses the session: alice's command came and went.
	waitOut := func(text string) { t.Helper(); waitText(t, helperOut, text, 20*time.Second) }
	waitOut("alice (agent, in a shell) joined")
	waitOut("alice (agent, in a shell) left")

	// A supervisor of the team watches read-only; the helper says so.
	sam := g.teamUser("sam", "supervisor", "red")
	watch := exec.Command(g.bin, "ssh", s.ID, "-tt")
	watch.Env = append(os.Environ(), "SUPPORTGATE_HOME="+sam)
	watchIn, err := watch.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	watchOut := &syncbuf.Buffer{}
	watch.Stdout, watch.Stderr = watchOut, watchOut
	watch.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // ssh runs as its child: stop both
	watch.WaitDelay = 5 * time.Second
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(helperOut.String(), "sam (supervisor, watching read-only) joined"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the helper never saw the supervisor join; supervisor's ssh said:\n%s", watchOut.String())
		}
	}
	if !strings.Contains(helperOut.String(), "sam (supervisor) watching") {
		t.Errorf("the helper's status line does not show the supervisor:\n%s", helperOut.String())
	}
	// An admin locks sam: their SSH connection is closed at once, while
	// alice's session goes on.
	root := g.user("root", "admin")
	if out := g.mustRun(root, "", "admin", "user", "lock", "sam"); !strings.Contains(out, "ended 0") {
		t.Errorf("lock sam: %q", out)
	}
	exited := make(chan error, 1)
	go func() { exited <- watch.Wait() }()
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		syscall.Kill(-watch.Process.Pid, syscall.SIGKILL)
		<-exited
		t.Errorf("the locked supervisor's ssh was still connected 5 s after the lock:\n%s", watchOut.String())
	}
	watchIn.Close()
	syscall.Kill(-watch.Process.Pid, syscall.SIGKILL) // ssh's children, if any are left
	waitOut("sam (supervisor, watching read-only) left")
	if !strings.Contains(watchOut.String(), "access to this session was withdrawn") {
		t.Errorf("the supervisor was not told why:\n%s", watchOut.String())
	}

	// The customer ends it (Ctrl-C revokes); the recording closes and verifies.
	helper.Process.Signal(os.Interrupt)
	if got := g.waitEnded(alice, s.ID, 10*time.Second); got.State != "ended" {
		t.Fatalf("session after the helper's Ctrl-C: %+v", got)
	}
	rec := filepath.Join(g.data, "recordings", s.ID+".sgrec")
	for end := time.Now().Add(10 * time.Second); ; {
		_, verr, vcode := g.run("", "", "verify", rec)
		if vcode == 0 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("verify %s: exit %d: %s", rec, vcode, verr)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A compliance reviewer goes through it with the gateway as source.
	reviewThroughGateway(t, g, s.ID, "via-bastion-42")
}
