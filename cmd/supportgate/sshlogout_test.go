package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"supportgate/internal/syncbuf"
)

// TestE2ESSHLogout: logging out ends the login's SSH access, with the real
// binaries and OpenSSH. The agent logs in with the CLI (which has an SSH
// certificate issued), holds a command open through the bastion, and
// signs out with POST /api/v1/logout: the open ssh is closed, told why,
// and the same certificate is refused from then on, though it has hours
// of validity left.
func TestE2ESSHLogout(t *testing.T) {
	g, alice, assistBin := sshE2E(t)
	s := g.newSession(alice, "shell", "30m")
	startHelper(t, g, assistBin, s.ConsentURL)
	sshUntil(t, g, alice, s.ID, "echo up-$((6*7))", "up-42\n", 20*time.Second)

	open := exec.Command(g.bin, "ssh", s.ID, "echo open-$((6*7)); exec sleep 600")
	open.Env = append(os.Environ(), "SUPPORTGATE_HOME="+alice)
	out := &syncbuf.Buffer{}
	open.Stdout, open.Stderr = out, out
	open.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // ssh runs as its child: stop both
	open.WaitDelay = 5 * time.Second
	if err := open.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- open.Wait() }()
	t.Cleanup(func() {
		syscall.Kill(-open.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	waitText(t, out, "open-42", 20*time.Second)

	logout(t, g, alice)
	select {
	case err := <-exited:
		exited <- err
		if err == nil {
			t.Errorf("ssh exited with status 0 after the logout, want a failure")
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("ssh still connected 5 s after the logout:\n%s", out.String())
	}
	if want := "connection closed: your login was signed out"; !strings.Contains(out.String(), want) {
		t.Errorf("ssh was not told why (%q):\n%s", want, out.String())
	}

	// The certificate on disk is still within its validity, and refused.
	stdout, errs, code := g.run(alice, "", "ssh", s.ID, "echo in")
	if code == 0 || strings.Contains(stdout, "in") {
		t.Fatalf("ssh with the signed-out certificate: exit %d, stdout %q", code, stdout)
	}
	for _, want := range []string{"has ended (signed out or expired); run `supportgate login` again", "Permission denied"} {
		if !strings.Contains(errs, want) {
			t.Errorf("ssh with the signed-out certificate: stderr %q, want %q", errs, want)
		}
	}
}

// logout signs out the login stored in home with POST /api/v1/logout and
// its bearer token, as any API client may.
func logout(t *testing.T, g *gw, home string) {
	t.Helper()
	token := storedToken(t, home)
	ca, err := os.ReadFile(filepath.Join(g.data, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, err := http.NewRequest("POST", g.url+"/api/v1/logout", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d %s", resp.StatusCode, body)
	}
}

// storedToken is the bearer token of the login `supportgate login` stored
// in home.
func storedToken(t *testing.T, home string) string {
	t.Helper()
	var cfg struct {
		Token string `json:"token"`
	}
	b, err := os.ReadFile(filepath.Join(home, "config.json"))
	if err == nil {
		err = json.Unmarshal(b, &cfg)
	}
	if err != nil || cfg.Token == "" {
		t.Fatalf("reading the stored login: %v", err)
	}
	return cfg.Token
}
