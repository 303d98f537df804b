package gateway_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/ssh"

	"supportgate/assist"
	"supportgate/gateway"
	"supportgate/gateway/identity"
	"supportgate/gateway/wghub"
	"supportgate/session"
)

func init() {
	addAccess(map[string]string{"POST /api/v1/assist/enroll": "customer"})
}

// newWGEnv is newEnv with a WireGuard hub on a loopback UDP socket.
func newWGEnv(t *testing.T) *env {
	t.Helper()
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uc.Close() }) // registered first, so it runs after the gateway closes
	return newEnvWith(t, func(c *gateway.Config) {
		c.WireGuard, c.WireGuardEndpoint = uc, uc.LocalAddr().String()
	})
}

// helper is a supportgate-assist run in-process: consent, enrollment and
// the tunnel endpoint.
type helper struct {
	consent *assist.Consent
	en      *assist.Enrollment
	ep      *assist.Endpoint
	hostKey ssh.Signer
	wgPub   string
}

func newHelperKeys(t *testing.T) (priv [32]byte, pub string, host ssh.Signer) {
	t.Helper()
	rand.Read(priv[:])
	priv[0] &= 248
	priv[31] = (priv[31] & 127) | 64
	p, _ := curve25519.X25519(priv[:], curve25519.Basepoint)
	_, hk, _ := ed25519.GenerateKey(rand.Reader)
	host, err := ssh.NewSignerFromKey(hk)
	if err != nil {
		t.Fatal(err)
	}
	return priv, wghub.FormatKey([32]byte(p)), host
}

func (e *env) httpsClient() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.mat.CAPool()}}}
}

// startHelper opens the link, approves it and enrolls, then starts the
// endpoint on a loopback UDP socket.
func (e *env) startHelper(link string) *helper {
	t := e.t
	t.Helper()
	ctx := context.Background()
	cs, err := assist.Open(ctx, e.httpsClient(), link)
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.Approve(ctx, nil); err != nil {
		t.Fatal(err)
	}
	priv, pub, host := newHelperKeys(t)
	en, err := cs.Enroll(ctx, pub, string(ssh.MarshalAuthorizedKey(host.PublicKey())))
	if err != nil {
		t.Fatal(err)
	}
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ep, err := assist.StartEndpoint(assist.EndpointConfig{
		Enrollment: en, PrivateKey: priv, HostKey: host, Conn: uc, Shell: "/bin/sh",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close(); uc.Close() })
	return &helper{consent: cs, en: en, ep: ep, hostKey: host, wgPub: pub}
}

// sshClient connects through the hub to the helper's SSH endpoint with the
// gateway's host key, checking the helper's enrolled key.
func (e *env) sshClient(id, agent string, h *helper) (*ssh.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := e.g.WireGuard().Dial(ctx, id, session.Need{Agent: agent, Kind: session.Shell})
	if err != nil {
		return nil, err
	}
	cc, chans, reqs, err := ssh.NewClientConn(c, "helper", &ssh.ClientConfig{
		User:            "supportgate",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(e.mat.SSHHostKey)},
		HostKeyCallback: ssh.FixedHostKey(h.hostKey.PublicKey()),
		Timeout:         10 * time.Second,
	})
	if err != nil {
		c.Close()
		return nil, err
	}
	return ssh.NewClient(cc, chans, reqs), nil
}

func echoServer(t *testing.T) (net.Listener, uint16) {
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
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln, uint16(ln.Addr().(*net.TCPAddr).Port)
}

// waitFor polls cond until it holds or d passes, and says how long it took.
func waitFor(d time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < d {
		if cond() {
			return time.Since(start), true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start), cond()
}

func TestAssistDeviceAccess(t *testing.T) {
	e := newWGEnv(t)
	alice := e.addUser("alice", identity.RoleAgent, "t1")
	e.addUser("mallory", identity.RoleAgent, "t1")
	_, port := echoServer(t)
	s := e.newSession(alice, []string{"shell", fmt.Sprintf("tunnel:%d", port)}, "30m")
	h := e.startHelper(s.ConsentURL)
	hub := e.g.WireGuard()

	t.Run("second enrollment refused", func(t *testing.T) {
		_, pub, host := newHelperKeys(t)
		_, err := h.consent.Enroll(context.Background(), pub, string(ssh.MarshalAuthorizedKey(host.PublicKey())))
		var ae *assist.APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusConflict {
			t.Fatalf("second enroll: got %v, want 409", err)
		}
		// Another client, without the bound cookie, cannot even try.
		other, err := assist.Open(context.Background(), e.httpsClient(), s.ConsentURL)
		if err == nil {
			_, err = other.Enroll(context.Background(), pub, string(ssh.MarshalAuthorizedKey(host.PublicKey())))
		}
		if !errors.As(err, &ae) || ae.Status != http.StatusForbidden {
			t.Fatalf("enroll from another client: got %v, want 403", err)
		}
	})

	t.Run("command over SSH", func(t *testing.T) {
		c, err := e.sshClient(s.ID, "alice", h)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		sess, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		out, err := sess.CombinedOutput("echo hello from $(id -un); exit 3")
		var ee *ssh.ExitError
		if !errors.As(err, &ee) || ee.ExitStatus() != 3 {
			t.Errorf("exit: got %v, want status 3", err)
		}
		if !strings.HasPrefix(string(out), "hello from ") {
			t.Errorf("output: got %q, want hello from USER", out)
		}
	})

	t.Run("only the gateway's key logs in", func(t *testing.T) {
		c, err := hub.Dial(context.Background(), s.ID, session.Need{Agent: "alice", Kind: session.Shell})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _, other := newHelperKeys(t)
		_, _, _, err = ssh.NewClientConn(c, "helper", &ssh.ClientConfig{
			User: "supportgate", Auth: []ssh.AuthMethod{ssh.PublicKeys(other)},
			HostKeyCallback: ssh.FixedHostKey(h.hostKey.PublicKey()), Timeout: 10 * time.Second,
		})
		if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
			t.Errorf("login with another key: got %v, want refused", err)
		}
	})

	t.Run("tunnel port", func(t *testing.T) {
		c, err := hub.Dial(context.Background(), s.ID, session.Need{Agent: "alice", Kind: session.Tunnel, Port: port})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintln(c, "ping through the tunnel")
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != "ping through the tunnel\n" {
			t.Errorf("echo: got %q, %v", line, err)
		}
	})

	t.Run("refused dials", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			need session.Need
			want error
		}{
			{"unconsented port", session.Need{Agent: "alice", Kind: session.Tunnel, Port: port + 1}, session.ErrScopeNotAllowed},
			{"SSH port as tunnel", session.Need{Agent: "alice", Kind: session.Tunnel, Port: 22}, session.ErrScopeNotAllowed},
			{"other agent", session.Need{Agent: "mallory", Kind: session.Shell}, session.ErrNotFound},
			{"view scope", session.Need{Agent: "alice", Kind: session.View}, session.ErrScopeNotAllowed},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c, err := hub.Dial(context.Background(), s.ID, tc.need)
				if err == nil {
					c.Close()
					t.Fatal("dial succeeded, want refusal")
				}
				if tc.want != nil && !errors.Is(err, tc.want) {
					t.Errorf("got %v, want %v", err, tc.want)
				}
			})
		}
	})

	t.Run("revoke closes shell within 1s", func(t *testing.T) {
		c, err := e.sshClient(s.ID, "alice", h)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		sess := startPTYShell(t, c)
		done := make(chan error, 1)
		go func() { done <- sess.Wait() }()
		start := time.Now()
		e.do(alice, "POST", "/api/v1/sessions/"+s.ID+"/revoke", nil, 200, nil)
		checkTornDown(t, e, hub, s.ID, start, done)
		if _, err := hub.Dial(context.Background(), s.ID, session.Need{Agent: "alice", Kind: session.Shell}); err == nil {
			t.Error("dial after revoke succeeded")
		}
	})
}

func TestAssistDeadline(t *testing.T) {
	e := newWGEnv(t)
	alice := e.addUser("alice", identity.RoleAgent, "t1")
	s := e.newSession(alice, []string{"shell"}, "5m")
	h := e.startHelper(s.ConsentURL)
	hub := e.g.WireGuard()
	c, err := e.sshClient(s.ID, "alice", h)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sess := startPTYShell(t, c)
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	watch := make(chan assist.View, 1)
	watching := make(chan struct{})
	go func() {
		var once sync.Once
		defer once.Do(func() { close(watching) })
		v, err := h.consent.Watch(context.Background(), func(assist.View) { once.Do(func() { close(watching) }) })
		if err != nil {
			t.Errorf("watch: %v", err)
		}
		watch <- v
	}()
	<-watching
	start := time.Now()
	e.clock.Advance(5*time.Minute + time.Second)
	checkTornDown(t, e, hub, s.ID, start, done)
	select {
	case v := <-watch:
		if v.State != "ended" || v.EndReason != "expired" {
			t.Errorf("helper saw %s/%s, want ended/expired", v.State, v.EndReason)
		}
	case <-time.After(time.Second):
		t.Error("the helper's watch did not report the end within 1s")
	}
}

func startPTYShell(t *testing.T, c *ssh.Client) *ssh.Session {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	stdin, _ := sess.StdinPipe()
	stdout, _ := sess.StdoutPipe()
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	if err := sess.WindowChange(40, 100); err != nil {
		t.Fatal(err)
	}
	// The resize travels as a channel request, beside the keystrokes:
	// ask until the shell sees it.
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		br := bufio.NewReader(stdout)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			select {
			case lines <- line:
			default: // nobody is asking any more
			}
		}
	}()
	deadline := time.After(10 * time.Second)
	var seen []string
	for resized := false; !resized; {
		fmt.Fprintln(stdin, "stty size")
		tick := time.After(50 * time.Millisecond)
	read:
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					t.Fatalf("shell closed after %q", seen)
				}
				seen = append(seen, line)
				if strings.TrimSpace(line) == "40 100" {
					resized = true
					break read
				}
			case <-tick:
				break read
			case <-deadline:
				t.Fatalf("window-change: stty size never printed 40 100: %q", seen)
			}
		}
	}
	return sess
}

func checkTornDown(t *testing.T, e *env, hub *wghub.Hub, id string, start time.Time, done <-chan error) {
	t.Helper()
	if took, ok := waitFor(time.Second, func() bool { return !hub.Enrolled(id) && hub.DevicePeerCount() == 0 }); !ok {
		t.Errorf("peer still present %v after the end", took)
	}
	select {
	case <-done:
		if took := time.Since(start); took > time.Second {
			t.Errorf("shell closed after %v, want within 1s", took)
		}
	case <-time.After(time.Second - time.Since(start)):
		t.Error("shell still open 1s after the end")
	}
}
