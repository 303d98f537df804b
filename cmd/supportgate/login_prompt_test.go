package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"supportgate/internal/syncbuf"
)

// TestE2ELoginPrompts: `supportgate login --gateway URL --user N`, as
// DESIGN.md gives it, asks for the password (not shown as typed) and the
// code on the terminal. Without a terminal it says to use --password-stdin;
// Ctrl-C at the password leaves the terminal's echo on. Before, login
// refused without --password-stdin.
func TestE2ELoginPrompts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the gateway")
	}
	g := newGW(t, `{}`)
	_, code := g.totpCodes(g.account("carol", "agent", ""))
	login := []string{"login", "--gateway", g.url, "--ca", filepath.Join(g.data, "ca.pem"), "--user", "carol"}

	home := filepath.Join(t.TempDir(), "carol-home")
	tty, out, cmd := startOnTerminal(t, home, g.bin, login...)
	expectOn(t, out, "password for carol: ")
	tty.Write([]byte(password + "\n"))
	expectOn(t, out, "code from the authenticator app: ")
	tty.Write([]byte(code + "\n"))
	if ps := waitExit(t, cmd, 30*time.Second); !ps.Success() {
		t.Fatalf("login on a terminal: %v\n%s", ps, out.String())
	}
	if !strings.Contains(out.String(), "logged in as carol") {
		t.Errorf("login on a terminal: got %q, want it logged in", out.String())
	}
	if strings.Contains(out.String(), password) {
		t.Errorf("the password was shown as typed: %q", out.String())
	}
	if !strings.Contains(out.String(), code) {
		t.Errorf("the code was not shown as typed: %q", out.String())
	}
	if s := g.show(home, g.newSession(home, "view", "10m").ID); s.Agent != "carol" {
		t.Errorf("the login made on the terminal: a session shows agent %q, want carol", s.Agent)
	}

	_, errs, rc := g.run(filepath.Join(t.TempDir(), "h2"), "", login...)
	if rc != 2 || !strings.Contains(errs, "use --password-stdin and --totp CODE") {
		t.Errorf("login without a terminal: exit %d, %q; want 2, saying to use --password-stdin", rc, errs)
	}

	tty, out, cmd = startOnTerminal(t, filepath.Join(t.TempDir(), "h3"), g.bin, login...)
	expectOn(t, out, "password for carol: ")
	tty.Write([]byte("half-typed\x03"))
	if ps := waitExit(t, cmd, 30*time.Second); ps.ExitCode() != 130 {
		t.Errorf("Ctrl-C at the password: got %v, want exit status 130", ps)
	}
	tio, terr := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if terr != nil {
		t.Fatal(terr)
	}
	if tio.Lflag&unix.ECHO == 0 {
		t.Errorf("after Ctrl-C at the password the terminal's echo is off")
	}
}

// startOnTerminal starts bin with args on a new terminal and returns the
// terminal, what is shown on it and the command.
func startOnTerminal(t *testing.T, home, bin string, args ...string) (*os.File, *syncbuf.Buffer, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "SUPPORTGATE_HOME="+home)
	tty, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	out := &syncbuf.Buffer{}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		tty.Close()
		<-copied
	})
	return tty, out, cmd
}

func expectOn(t *testing.T, out *syncbuf.Buffer, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the terminal never showed %q; got %q", want, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
