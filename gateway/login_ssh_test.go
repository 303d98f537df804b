package gateway_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"supportgate/gateway"
	"supportgate/gateway/identity"
	"supportgate/gateway/users"
)

// sshLogin logs u in again with a fresh SSH key, as supportgate login
// does, and returns that login (u with its token) and its certificate.
func (e *env) sshLogin(u *testUser) (*testUser, *ssh.Certificate, string) {
	e.t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		e.t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		e.t.Fatal(err)
	}
	var resp struct {
		Token          string `json:"token"`
		SSHCertificate string `json:"ssh_certificate"`
	}
	e.do(nil, "POST", "/api/v1/login", map[string]string{
		"user": u.name, "password": testPassword, "totp": u.code(),
		"ssh_public_key": string(ssh.MarshalAuthorizedKey(sp)),
	}, 200, &resp)
	e.clock.Advance(30 * time.Second) // the next login needs the next code
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(resp.SSHCertificate))
	if err != nil {
		e.t.Fatalf("ssh_certificate %q: %v", resp.SSHCertificate, err)
	}
	cert, ok := k.(*ssh.Certificate)
	if !ok {
		e.t.Fatalf("ssh_certificate is a %T, want a certificate", k)
	}
	login := *u
	login.token = resp.Token
	return &login, cert, resp.SSHCertificate
}

// TestLogoutEndsLoginSSH: the certificate from a login names that login
// (users.SSHLoginExtension: the LoginID of its token's hash, never the
// token), and logout hands exactly that login to Config.OnLoginDropped,
// after its token is gone, so the bastion refuses the certificate and
// closes its connections; the user's other logins are not named.
func TestLogoutEndsLoginSSH(t *testing.T) {
	var (
		mu      sync.Mutex
		dropped []string
		e       *env
	)
	e = newEnvWith(t, func(c *gateway.Config) {
		c.OnLoginDropped = func(login string) {
			h, err := users.ParseLoginID(login)
			if err == nil {
				_, err = e.store.GetToken(context.Background(), h)
			}
			if !errors.Is(err, users.ErrNotFound) {
				t.Errorf("OnLoginDropped(%s): the login's token: got %v, want deleted first", login, err)
			}
			mu.Lock()
			defer mu.Unlock()
			dropped = append(dropped, login)
		}
	})
	droppedNow := func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(dropped, " ")
	}
	alice := e.addUser("alice", identity.RoleAgent, "red")
	laptop, laptopCert, laptopLine := e.sshLogin(alice)
	desktop, desktopCert, _ := e.sshLogin(alice)

	laptopID := users.LoginID(identity.HashToken(laptop.token))
	desktopID := users.LoginID(identity.HashToken(desktop.token))
	for _, c := range []struct {
		name string
		cert *ssh.Certificate
		want string
	}{{"laptop", laptopCert, laptopID}, {"desktop", desktopCert, desktopID}} {
		if got := c.cert.Extensions[users.SSHLoginExtension]; got != c.want {
			t.Errorf("%s certificate's %s: got %q, want %q", c.name, users.SSHLoginExtension, got, c.want)
		}
	}
	if laptopID == desktopID {
		t.Errorf("two logins share the login id %s", laptopID)
	}
	tokenBody := laptop.token[strings.Index(laptop.token, "_")+1:]
	if strings.Contains(laptopLine, tokenBody) || strings.Contains(string(laptopCert.Marshal()), tokenBody) {
		t.Error("the certificate carries the bearer token")
	}

	e.do(laptop, "POST", "/api/v1/logout", nil, 200, nil)
	if got := droppedNow(); got != laptopID {
		t.Errorf("after the laptop's logout, OnLoginDropped got %q, want %q", got, laptopID)
	}
	e.do(desktop, "GET", "/api/v1/me", nil, 200, nil) // the other login goes on
	e.do(alice, "POST", "/api/v1/logout", nil, 200, nil)
	e.do(desktop, "POST", "/api/v1/logout", nil, 200, nil)
	want := laptopID + " " + users.LoginID(identity.HashToken(alice.token)) + " " + desktopID
	if got := droppedNow(); got != want {
		t.Errorf("after every logout, OnLoginDropped got %q, want %q", got, want)
	}
}
