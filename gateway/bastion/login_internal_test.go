package bastion

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"testing"

	"golang.org/x/crypto/ssh"

	"supportgate/gateway/users"
	"supportgate/recorder"
	"supportgate/session"
)

type noUsers struct{}

func (noUsers) GetUser(context.Context, string) (*users.User, error) { return nil, users.ErrNotFound }

func (noUsers) GetToken(context.Context, [32]byte) (users.Token, error) {
	return users.Token{}, users.ErrNotFound
}

func newBareServer(t *testing.T) *Server {
	t.Helper()
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	host, err := ssh.NewSignerFromKey(k)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{
		HostKey: host, UserCA: host.PublicKey(), Users: noUsers{}, Logins: noUsers{},
		Sessions:  (*session.Broker)(nil), // never asked here
		Recording: func(string) (*recorder.Writer, error) { return nil, net.ErrClosed },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestConfigRequiresLogins: a bastion without Logins could not end a
// certificate with its login, so it is not built.
func TestConfigRequiresLogins(t *testing.T) {
	s := newBareServer(t)
	cfg := s.cfg
	cfg.Logins = nil
	if _, err := New(cfg); err == nil || err.Error() != "bastion: Config.Logins is required" {
		t.Errorf("New without Logins: got %v, want Config.Logins is required", err)
	}
}

// TestDropLoginAdmit: a connection whose authentication began before its
// login's DropLogin is refused at admission, another login's is not; and
// DropLogin's memory of a login lasts only while a connection accepted
// before it still awaits admission.
func TestDropLoginAdmit(t *testing.T) {
	s := newBareServer(t)
	for i := range 1000 {
		s.DropLogin(users.LoginID([32]byte{byte(i), byte(i >> 8)}))
	}
	if n := len(s.droppedLogins); n != 0 {
		t.Errorf("after 1000 sign-outs with no connection waiting: %d logins remembered, want 0", n)
	}

	raw, other := net.Pipe()
	defer other.Close()
	raw2, other2 := net.Pipe()
	defer other2.Close()
	if !s.track(raw) {
		t.Fatal("track refused the connection")
	}
	if !s.track(raw2) {
		t.Fatal("track refused the second connection")
	}
	drops := s.dropCount() // as authKey reads it, before looking the login up
	s.DropLogin("L1")
	s.DropLogin("L2")
	if n := len(s.droppedLogins); n != 2 {
		t.Errorf("with connections waiting: %d logins remembered, want 2", n)
	}
	err := s.admit(&conn{principal: "alice", login: "L1"}, raw, drops)
	if err == nil || err.Error() != "the login was signed out during authentication" {
		t.Errorf("admit of the signed-out login: got %v, want refused", err)
	}
	cn := &conn{principal: "alice", login: "L3"}
	if err := s.admit(cn, raw2, drops); err != nil {
		t.Errorf("admit of another login: got %v, want admitted", err)
	}
	s.leave(cn)
	s.DropLogin("L4") // nothing waits now: every memory goes
	if n := len(s.droppedLogins); n != 0 {
		t.Errorf("once no connection waits: %d logins remembered, want 0", n)
	}
	s.untrack(raw)
	s.untrack(raw2)
}
