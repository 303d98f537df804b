package bastion_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"supportgate/gateway/proxies"
)

// TestProxyProtocolSource: behind a TCP load balancer that sends PROXY
// protocol headers, the bastion takes a connection to come from the client
// its header names (the audit log's remote), and a balancer's connection
// that has not sent its header yet holds up nobody else's.
func TestProxyProtocolSource(t *testing.T) {
	lbs, err := proxies.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.3/32")})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{wrapListener: func(ln net.Listener) net.Listener {
		return proxies.ProtocolListener(ln, lbs, time.Minute)
	}})
	e.addUser("alice", "agent", "t1")
	s := e.newSession("alice", "shell", 30*time.Minute)
	alice := e.certFor("alice")
	bastion := "127.0.0.1:" + e.port

	// The balancer opens a connection and sends nothing yet.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}}
	quiet, err := d.Dial("tcp", bastion)
	if err != nil {
		t.Fatal(err)
	}
	defer quiet.Close()

	type result struct {
		out, stderr string
		err         error
	}
	done := make(chan result, 1)
	go func() {
		out, stderr, err := e.run(alice, s.ID, nil, "echo direct")
		done <- result{out, stderr, err}
	}()
	select {
	case r := <-done:
		if r.err != nil || r.out != "direct\n" {
			t.Fatalf("direct login: got %q %v (stderr %q)", r.out, r.err, r.stderr)
		}
	case <-time.After(30 * time.Second): // the header may take a minute
		t.Fatal("a direct login waited for the balancer's PROXY header")
	}

	// Through the balancer, for the client 192.0.2.44.
	fwd := forwardWithHeader(t, &d, bastion, "PROXY TCP4 192.0.2.44 127.0.0.1 40000 22\r\n")
	_, fwdPort, _ := net.SplitHostPort(fwd)
	kh, err := os.OpenFile(e.knownHs, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(kh, "\n[127.0.0.1]:%s %s", fwdPort, ssh.MarshalAuthorizedKey(e.mat.SSHHostKey.PublicKey()))
	kh.Close()
	args := e.sshArgs(alice, s.ID)
	args[slices.Index(args, "-p")+1] = fwdPort
	cmd := exec.Command(e.sshBin, append(args, "echo balanced")...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &out, &stderr, strings.NewReader("")
	cmd.Env = append(os.Environ(), "HOME="+alice.dir)
	if err := cmd.Run(); err != nil || out.String() != "balanced\n" {
		t.Fatalf("login through the balancer: got %q %v (stderr %q)", out.String(), err, stderr.String())
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	var remotes []string
	for _, ev := range e.events {
		if ev.Session == s.ID && ev.Remote != "" {
			host, _, _ := net.SplitHostPort(ev.Remote)
			if !slices.Contains(remotes, host) {
				remotes = append(remotes, host)
			}
		}
	}
	if got, want := strings.Join(remotes, " "), "127.0.0.1 192.0.2.44"; got != want {
		t.Errorf("the session's audited remotes: got %q, want %q", got, want)
	}
}

// forwardWithHeader listens on loopback and forwards each connection to
// addr, dialled with d, after sending header: a TCP load balancer that
// speaks the PROXY protocol. It returns the address it listens on.
func forwardWithHeader(t *testing.T, d *net.Dialer, addr, header string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := d.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer up.Close()
				if _, err := io.WriteString(up, header); err != nil {
					return
				}
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
	return ln.Addr().String()
}
