package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"supportgate/gateway"
	"supportgate/internal/syncbuf"
)

// TestE2ESecondServeRefused: a second serve on a data directory in use
// exits at once naming the first one's pid, which keeps serving; the lock
// goes with the first serve, even SIGKILLed.
func TestE2ESecondServeRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	g := newGW(t, e2ePolicy)
	alice := g.user("alice", "agent")

	second := exec.Command(g.bin, "serve", "--data", g.data, "--config", g.config,
		"--http-addr", freePort(t), "--ssh-addr", freePort(t), "--wg-addr", freeUDPPort(t))
	errs := &syncbuf.Buffer{}
	second.Stderr = errs
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	st := waitExit(t, second, 10*time.Second)
	want := fmt.Sprintf("supportgate: another supportgate serve (pid %d) is using %s; stop it first\n", g.cmd.Process.Pid, g.data)
	if st.Success() || errs.String() != want {
		t.Fatalf("second serve: %v, stderr %q; want a non-zero exit and %q", st, errs.String(), want)
	}
	g.mustRun(alice, "", "session", "list")

	g.kill()
	g.start() // fails the test if the lock outlived the SIGKILLed serve
}

// TestE2EServeSIGHUP: SIGHUP (serve's terminal closed, or `kill -HUP`)
// stops serve cleanly while a screen share is recorded: exit 0, the
// recording ends with its signed end record, gateway.stopped is audited.
func TestE2EServeSIGHUP(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	g := newGW(t, `{"min_duration": "1s"}`)
	alice := g.user("alice", "agent")
	s := g.newSession(alice, "view", "30m")
	g.browser(s.ConsentURL).approve(`["view"]`)
	ws := openScreenShare(t, g, alice, s.ID)
	defer ws.Close()
	rec := gateway.RecordingPath(g.data, s.ID)
	if _, err := os.Stat(rec); err != nil {
		t.Fatalf("the screen share opened no recording: %v", err)
	}

	g.cmd.Process.Signal(syscall.SIGHUP)
	st := waitExit(t, g.cmd, 5*time.Second)
	g.cmd = nil
	if !st.Success() {
		t.Fatalf("serve after SIGHUP: %v, want exit 0:\n%s", st, g.stderr.String())
	}
	if _, errs, code := g.run("", "", "verify", rec); code != 0 {
		t.Errorf("verify: exit %d: %s", code, strings.TrimSpace(errs))
	}
	if export := g.mustRun("", "", "audit", "export", "--data", g.data); !strings.Contains(export, `"gateway.stopped"`) {
		t.Errorf("no gateway.stopped audited after SIGHUP")
	}
}

// waitExit waits at most limit for cmd to exit and returns how it did; a
// process still running then is killed and fails the test.
func waitExit(t *testing.T, cmd *exec.Cmd, limit time.Duration) *os.ProcessState {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s still running after %v", strings.Join(cmd.Args[:2], " "), limit)
	}
	return cmd.ProcessState
}

// openScreenShare opens the agent's screen-share websocket, which opens
// the session's recording.
func openScreenShare(t *testing.T, g *gw, home, id string) *websocket.Conn {
	t.Helper()
	ca, err := os.ReadFile(filepath.Join(g.data, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool}, HandshakeTimeout: 10 * time.Second}
	h := http.Header{"Authorization": {"Bearer " + storedToken(t, home)}, "Origin": {g.url}}
	c, resp, err := d.Dial(strings.Replace(g.url, "https://", "wss://", 1)+"/api/v1/sessions/"+id+"/rtc", h)
	if err != nil {
		t.Fatalf("screen-share websocket: %v (%v)", err, resp)
	}
	return c
}
