package bastion_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"supportgate/gateway/bastion"
	"supportgate/gateway/users"
)

// loginEnded is the bastion's one answer for a certificate whose login has
// ended, whatever the reason.
const loginEnded = "the login this certificate was issued to has ended (signed out or expired); run `supportgate login` again"

// TestCertLoginChecked: a certificate is accepted only while the login it
// is bound to lasts: its token stored, an API token of the certificate's
// principal, not expired by the bastion's own clock (here 10 minutes ahead
// of the wall clock). Every other case gets the same answer.
func TestCertLoginChecked(t *testing.T) {
	e := newEnv(t, envOptions{skew: 10 * time.Minute})
	e.addUser("alice", "agent", "t1")
	e.addUser("bob", "agent", "t1")
	s := e.newSession("alice", "shell", 30*time.Minute)
	alice := []string{"alice"}
	var unknown [32]byte
	rand.Read(unknown[:])
	signedOut := e.certFor("alice")
	if err := e.st.DeleteToken(context.Background(), signedOut.token.Hash); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		id   *identity
		want string // in stderr; "" for a login
	}{
		{"live login", e.certFor("alice"), ""},
		{"signed out (token deleted)", signedOut, loginEnded},
		{"token expired by the bastion's clock", e.newIdentity(&certOpts{principals: alice, tokenExpires: time.Now().Add(5 * time.Minute)}), loginEnded},
		{"another user's token", e.newIdentity(&certOpts{principals: alice, tokenUser: "bob"}), loginEnded},
		{"an enrollment token", e.newIdentity(&certOpts{principals: alice, tokenKind: users.KindEnroll}), loginEnded},
		{"a login never stored", e.newIdentity(&certOpts{principals: alice, login: users.LoginID(unknown)}), loginEnded},
		{"a malformed login", e.newIdentity(&certOpts{principals: alice, login: strings.ToUpper(users.LoginID(unknown))}), loginEnded},
		{"no login", e.newIdentity(&certOpts{principals: alice, noLogin: true}),
			"certificate is not bound to a login (issued before logins were); run `supportgate login` again"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stderr := e.expectEcho(t, tc.id, s.ID, tc.want)
			if tc.want == "" {
				return
			}
			if !strings.Contains(stderr, "Permission denied") {
				t.Errorf("stderr: got %q, want Permission denied", stderr)
			}
			if strings.Contains(stderr, "no session") || strings.Contains(stderr, "account") {
				t.Errorf("stderr goes on to the session or account, which an ended login must not learn about: %q", stderr)
			}
		})
	}
}

// TestDropLogin: signing out one login closes its connections, an agent's
// shell and a supervisor's watch, within a second, told why; another login
// of the same user keeps its shell, and the signed-out certificate is
// refused from then on.
func TestDropLogin(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.addUser("alice", "agent", "t1")
	e.addUser("sue", "supervisor", "t1")
	s := e.newSession("alice", "shell", 30*time.Minute)
	laptop, desktop := e.certFor("alice"), e.certFor("alice")
	p1 := e.startPTY(t, laptop, s.ID)
	p1.expect(t, "This session is recorded")
	p2 := e.startPTY(t, desktop, s.ID)
	p2.expect(t, "This session is recorded")
	sueLogin := e.certFor("sue")
	sv := e.startPTY(t, sueLogin, s.ID)
	sv.expect(t, "read-only as supervisor sue")

	for _, c := range []struct {
		name string
		id   *identity
		p    *ptySSH
	}{{"agent", laptop, p1}, {"supervisor", sueLogin, sv}} {
		start := time.Now()
		e.logout(c.id)
		select {
		case <-c.p.done:
			if took := time.Since(start); took > time.Second {
				t.Errorf("%s's connection closed %v after DropLogin, want within 1s", c.name, took)
			}
		case <-time.After(time.Second):
			t.Fatalf("%s's connection still open 1s after DropLogin:\n%s", c.name, c.p.out.String())
		}
		waitFor(time.Second, func() bool { return strings.Contains(c.p.out.String(), "signed out") })
		if want := "connection closed: your login was signed out; run `supportgate login` again."; !strings.Contains(c.p.out.String(), want) {
			t.Errorf("%s was not told why (%q):\n%s", c.name, want, c.p.out.String())
		}
	}

	p2.send("echo still-$((20+22))\r")
	p2.expect(t, "still-42")
	if _, stderr, err := e.run(laptop, s.ID, nil, "true"); err == nil || !strings.Contains(stderr, loginEnded) {
		t.Errorf("the signed-out certificate: got %v %q, want refused with %q", err, stderr, loginEnded)
	}
	if out, stderr, err := e.run(desktop, s.ID, nil, "echo in"); err != nil || out != "in\n" {
		t.Errorf("the other login: got %q %v (stderr %q), want in", out, err, stderr)
	}
}

// TestLoginExpiryEndsConnection: a connection ends when its login's token
// expires, though its certificate is still valid, as the login's
// websockets do.
func TestLoginExpiryEndsConnection(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.addUser("alice", "agent", "t1")
	s := e.newSession("alice", "shell", 30*time.Minute)
	exp := time.Now().Add(6 * time.Second) // time to log in on a loaded machine
	p := e.startPTY(t, e.newIdentity(&certOpts{principals: []string{"alice"}, tokenExpires: exp}), s.ID)
	p.expect(t, "This session is recorded")
	select {
	case <-p.done:
		if late := time.Since(exp); late > time.Second {
			t.Errorf("shell closed %v after the login expired, want within 1s", late)
		}
	case <-time.After(time.Until(exp) + time.Second):
		t.Fatalf("shell still open 1s after the login expired:\n%s", p.out.String())
	}
	if time.Now().Before(exp) {
		t.Errorf("shell closed %v before the login expired", time.Until(exp))
	}
	waitFor(time.Second, func() bool { return strings.Contains(p.out.String(), "expired") })
	if want := "connection closed: your login expired; run `supportgate login` again."; !strings.Contains(p.out.String(), want) {
		t.Errorf("no reason shown (%q):\n%s", want, p.out.String())
	}
}

// pausingLogins holds the authentication that looks up the login armed
// for, once, after it has read the token and before it goes on.
type pausingLogins struct {
	bastion.Logins
	mu      sync.Mutex
	armed   [32]byte
	looked  chan struct{} // closed when the armed look-up has read the token
	release chan struct{} // closed to let it go on
}

func (p *pausingLogins) arm(h [32]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed, p.looked, p.release = h, make(chan struct{}), make(chan struct{})
}

func (p *pausingLogins) GetToken(ctx context.Context, h [32]byte) (users.Token, error) {
	t, err := p.Logins.GetToken(ctx, h)
	p.mu.Lock()
	hit := h == p.armed
	looked, release := p.looked, p.release
	if hit {
		p.armed = [32]byte{}
	}
	p.mu.Unlock()
	if hit {
		close(looked)
		<-release
	}
	return t, err
}

// TestDropLoginDuringHandshake: a connection whose authentication read
// the login before it was signed out, and completes after, is closed
// rather than admitted. The control case shows the pause alone lets it in.
func TestDropLoginDuringHandshake(t *testing.T) {
	pl := &pausingLogins{}
	e := newEnv(t, envOptions{wrapLogins: func(l bastion.Logins) bastion.Logins { pl.Logins = l; return pl }})
	e.addUser("alice", "agent", "t1")
	s := e.newSession("alice", "shell", 30*time.Minute)

	for _, signOut := range []bool{false, true} {
		id := e.certFor("alice")
		pl.arm(id.token.Hash)
		type dialed struct {
			c   *ssh.Client
			err error
		}
		done := make(chan dialed, 1)
		go func() {
			c, err := dialBastion(e, id, s.ID)
			done <- dialed{c, err}
		}()
		select {
		case <-pl.looked:
		case <-time.After(15 * time.Second):
			t.Fatal("the authentication never looked up the login")
		}
		if signOut {
			e.logout(id)
		}
		close(pl.release)
		d := <-done
		if !signOut {
			if d.err != nil {
				t.Fatalf("control, no sign-out: %v", d.err)
			}
			if out, err := echoOn(d.c); err != nil || out != "in\n" {
				t.Fatalf("control, no sign-out: got %q %v, want in", out, err)
			}
			d.c.Close()
			continue
		}
		if d.err != nil {
			continue // refused before the client saw the handshake end
		}
		// The client saw authentication succeed; the bastion then closed
		// the connection instead of admitting it.
		closed := make(chan error, 1)
		go func() { closed <- d.c.Wait() }()
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			d.c.Close()
			t.Fatal("a connection authenticated during DropLogin is still open 5 s later")
		}
		if out, err := echoOn(d.c); err == nil {
			t.Errorf("a command ran on the dropped connection: %q", out)
		}
	}
	if !waitFor(5*time.Second, func() bool { return e.b.Conns() == 0 }) {
		t.Errorf("%d connections open after the handshake raced DropLogin", e.b.Conns())
	}
}

// dialBastion connects with x/crypto's client and id's certificate.
func dialBastion(e *env, id *identity, user string) (*ssh.Client, error) {
	keyPEM, err := os.ReadFile(id.key)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.ParsePrivateKey(keyPEM)
	if err != nil {
		return nil, err
	}
	certLine, err := os.ReadFile(id.cert)
	if err != nil {
		return nil, err
	}
	pk, _, _, _, err := ssh.ParseAuthorizedKey(certLine)
	if err != nil {
		return nil, err
	}
	cs, err := ssh.NewCertSigner(pk.(*ssh.Certificate), signer)
	if err != nil {
		return nil, err
	}
	return ssh.Dial("tcp", "127.0.0.1:"+e.port, &ssh.ClientConfig{
		User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(cs)},
		HostKeyCallback: ssh.FixedHostKey(e.mat.SSHHostKey.PublicKey()), Timeout: 30 * time.Second,
	})
}

// echoOn runs a command on c that prints a line and then waits for its
// input, and returns the line. (A command that exits at once can close
// its channel before the bastion's reply to exec gets out, which
// x/crypto's client reports as EOF.)
func echoOn(c *ssh.Client) (string, error) {
	sess, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer sess.Close()
	out, err := sess.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := sess.Start("echo in; exec cat >/dev/null"); err != nil {
		return "", err
	}
	return bufio.NewReader(out).ReadString('\n')
}
