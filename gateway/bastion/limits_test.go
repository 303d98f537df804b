package bastion_test

import (
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"supportgate/gateway/users"
)

// TestAgentAccountChecked: a still-valid certificate is not enough; the
// agent's account must exist, be enabled and still be an agent's.
func TestAgentAccountChecked(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.addUser("alice", "agent", "t1")
	e.addUser("bob", "agent", "t1")
	e.addUser("carol", "supervisor", "t1")
	for _, tc := range []struct {
		name   string
		agent  string
		change func(*users.User) // nil: the account is never created
		ok     bool
	}{
		{"enabled agent", "alice", func(*users.User) {}, true},
		{"supervisor as the session's agent", "carol", func(*users.User) {}, true},
		{"disabled agent", "alice", func(u *users.User) { u.Disabled = true }, false},
		{"agent now an auditor", "bob", func(u *users.User) { u.Role = "auditor" }, false},
		{"no account", "ghost", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := e.newSession(tc.agent, "shell", 30*time.Minute)
			id := e.certFor(tc.agent)
			if tc.change != nil {
				e.updateUser(tc.agent, tc.change)
			}
			out, stderr, err := e.run(id, s.ID, nil, "echo in")
			if tc.ok {
				if err != nil || out != "in\n" {
					t.Fatalf("got %q %v (stderr %q), want in", out, err, stderr)
				}
				return
			}
			if err == nil || strings.Contains(out, "in") {
				t.Fatalf("logged in: out %q", out)
			}
			if !strings.Contains(stderr, "account") || !strings.Contains(stderr, "Permission denied") {
				t.Errorf("stderr: got %q, want the account refusal and Permission denied", stderr)
			}
		})
	}
}

// TestHandshakesPerSource: one address holding idle TCP connections open
// cannot lock agents out, however small MaxConns is.
func TestHandshakesPerSource(t *testing.T) {
	const idle = 40 // well over the per-source cap of handshakes
	e := newEnv(t, envOptions{maxConns: 8})
	e.addUser("alice", "agent", "t1")
	s := e.newSession("alice", "shell", 30*time.Minute)
	alice := e.certFor("alice")

	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range idle {
		c, err := d.Dial("tcp", "127.0.0.1:"+e.port)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// Connections over the cap are closed at once; the others wait for
	// a handshake that never comes. (Read concurrently: once a deadline
	// has passed, Go reports a timeout without looking for the EOF.)
	deadline := time.Now().Add(1500 * time.Millisecond)
	eof := make(chan bool, idle)
	for _, c := range conns {
		go func() {
			c.SetReadDeadline(deadline)
			_, err := io.Copy(io.Discard, c)
			var ne net.Error
			eof <- !errors.As(err, &ne) || !ne.Timeout()
		}()
	}
	closed := 0
	for range idle {
		if <-eof {
			closed++
		}
	}
	if open := idle - closed; open > 16 {
		t.Errorf("%d idle connections from one address held open, want at most 16", open)
	}
	out, stderr, err := e.run(alice, s.ID, nil, "echo in")
	if err != nil || out != "in\n" {
		t.Fatalf("with %d idle connections from 127.0.0.2: got %q %v (stderr %q), want in", idle, out, err, stderr)
	}
}

// TestChannelsPerConnectionCapped: one connection holds at most 64
// channels at once; more are refused as a resource shortage until one
// closes.
func TestChannelsPerConnectionCapped(t *testing.T) {
	const max = 64
	e := newEnv(t, envOptions{})
	e.addUser("alice", "agent", "t1")
	e.addUser("sue", "supervisor", "t1")
	s := e.newSession("alice", "shell", 30*time.Minute)
	c := e.goClient(t, e.certFor("sue"), s.ID) // watching needs no helper: cheap channels
	defer c.Close()
	var chans []ssh.Channel
	for i := range max {
		ch, reqs, err := c.OpenChannel("session", nil)
		if err != nil {
			t.Fatalf("channel %d: %v", i+1, err)
		}
		go ssh.DiscardRequests(reqs)
		chans = append(chans, ch)
	}
	_, _, err := c.OpenChannel("session", nil)
	var oe *ssh.OpenChannelError
	if !errors.As(err, &oe) || oe.Reason != ssh.ResourceShortage {
		t.Fatalf("channel %d: got %v, want a resource shortage", max+1, err)
	}
	chans[0].Close()
	if !waitFor(5*time.Second, func() bool {
		ch, reqs, err := c.OpenChannel("session", nil)
		if err != nil {
			return false
		}
		go ssh.DiscardRequests(reqs)
		chans[0] = ch
		return true
	}) {
		t.Errorf("no channel could be opened after one closed")
	}
	for _, ch := range chans {
		ch.Close()
	}
}

// TestCertSourceAddress: the certificate's source-address is enforced;
// other critical options are refused.
func TestCertSourceAddress(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.addUser("alice", "agent", "t1")
	s := e.newSession("alice", "shell", 30*time.Minute)
	for _, tc := range []struct {
		name     string
		critical map[string]string
		want     string // in stderr; "" for a login
	}{
		{"loopback", map[string]string{"source-address": "127.0.0.1"}, ""},
		{"loopback network and v6", map[string]string{"source-address": "127.0.0.0/8,::1"}, ""},
		{"another address", map[string]string{"source-address": "10.9.9.9/32"}, "Permission denied"},
		{"force-command", map[string]string{"force-command": "/bin/true"}, "unsupported critical option"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := e.newIdentity(&certOpts{principals: []string{"alice"}, critical: tc.critical})
			e.expectEcho(t, id, s.ID, tc.want)
		})
	}
}

// TestDropUser: a supervisor watching and an agent working are cut off
// within a second of DropUser, told why; the others stay.
func TestDropUser(t *testing.T) {
	e, s, p, sv := watchedShell(t)

	// sue is moved to another team, and the gateway drops her.
	e.updateUser("sue", func(u *users.User) { u.Team = "t2" })
	start := time.Now()
	e.b.DropUser("sue")
	select {
	case <-sv.done:
		if took := time.Since(start); took > time.Second {
			t.Errorf("supervisor dropped after %v, want within 1s", took)
		}
	case <-time.After(time.Second):
		t.Fatalf("supervisor still watching 1s after DropUser:\n%s", sv.out.String())
	}
	waitFor(time.Second, func() bool { return strings.Contains(sv.out.String(), "withdrawn") })
	if !strings.Contains(sv.out.String(), "connection closed: your access to this session was withdrawn") {
		t.Errorf("no reason shown to the supervisor:\n%s", sv.out.String())
	}
	p.send("echo still-$((20+22))\r")
	p.expect(t, "still-42")
	if _, stderr, err := e.run(e.certFor("sue"), s.ID, nil, "true"); err == nil || !strings.Contains(stderr, "no session") {
		t.Errorf("sue reconnecting from another team: got %v %q, want refused", err, stderr)
	}

	// alice, with a shell and a connection that only forwards, is dropped.
	local := freePort(t)
	fwd := exec.Command(e.sshBin, e.sshArgs(e.certFor("alice"), s.ID, "-N", "-L", "127.0.0.1:"+local+":localhost:9")...)
	fwd.Env = append(os.Environ(), "HOME="+t.TempDir())
	if err := fwd.Start(); err != nil {
		t.Fatal(err)
	}
	fwdDone := make(chan error, 1)
	go func() { fwdDone <- fwd.Wait() }()
	t.Cleanup(func() { fwd.Process.Kill(); <-fwdDone })
	// ssh listens on the local port once authenticated.
	if !waitFor(10*time.Second, func() bool {
		c, err := net.Dial("tcp", "127.0.0.1:"+local)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		t.Fatal("the forwarding connection never authenticated")
	}
	e.updateUser("alice", func(u *users.User) { u.Disabled = true })
	start = time.Now()
	e.b.DropUser("alice")
	select {
	case <-p.done:
	case <-time.After(time.Second):
		t.Fatalf("agent's shell still open 1s after DropUser:\n%s", p.out.String())
	}
	select {
	case err := <-fwdDone:
		fwdDone <- err
	case <-time.After(time.Second - time.Since(start)):
		t.Fatal("agent's forwarding connection still open 1s after DropUser")
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("agent dropped after %v, want within 1s", took)
	}
	if !waitFor(5*time.Second, func() bool { return e.b.Conns() == 0 }) {
		t.Errorf("%d connections open after dropping everyone", e.b.Conns())
	}
}
