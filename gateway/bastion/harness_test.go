package bastion_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/ssh"

	"supportgate/assist"
	"supportgate/gateway"
	"supportgate/gateway/audit"
	"supportgate/gateway/bastion"
	"supportgate/gateway/keys"
	"supportgate/gateway/sqlite"
	"supportgate/gateway/users"
	"supportgate/gateway/wghub"
	"supportgate/internal/realpeer"
	"supportgate/session"
)

// env is an in-process gateway with a WireGuard hub on loopback, the
// bastion on a loopback listener, and real assist helpers.
type env struct {
	t       testing.TB
	dir     string
	mat     *keys.Material
	st      *sqlite.Store
	srv     *httptest.Server
	g       *gateway.Gateway
	b       *bastion.Server
	port    string // the bastion's TCP port
	recDir  string
	ident   *age.X25519Identity
	sshBin  string
	knownHs string

	mu     sync.Mutex
	events []audit.Event
}

type envOptions struct {
	warnBefore    time.Duration
	policy        session.Policy
	ownRecordings bool // the bastion writes its own recordings, not the gateway's shared ones
	// wrapHelpers, if set, wraps the gateway's helpers (the hub) as the
	// bastion sees them.
	wrapHelpers func(bastion.Helpers) bastion.Helpers
	recording   gateway.RecordingConfig // the gateway's recordings
	maxConns    int                     // bastion.Config.MaxConns; 0 for the default
	// wrapLogins, if set, wraps the store as the bastion's Logins.
	wrapLogins func(bastion.Logins) bastion.Logins
	// skew puts the bastion's clock (Config.Now) ahead of the wall clock.
	skew time.Duration
	// wrapListener, if set, wraps the listener the bastion serves.
	wrapListener func(net.Listener) net.Listener
}

func newEnv(t testing.TB, opt envOptions) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), sshBin: realpeer.Require(t, "ssh")}
	var err error
	if e.mat, _, err = keys.LoadOrCreate(filepath.Join(e.dir, "data"), keys.Options{}); err != nil {
		t.Fatal(err)
	}
	if e.st, err = sqlite.Open(filepath.Join(e.dir, "test.db"), sqlite.Options{}); err != nil {
		t.Fatal(err)
	}
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if e.ident, err = age.GenerateX25519Identity(); err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewUnstartedServer(nil)
	e.srv.TLS = e.mat.TLSConfig()
	e.srv.StartTLS()
	pol := opt.policy
	if pol.MaxOpenPerAgent == 0 {
		pol.MaxOpenPerAgent = 1000
	}
	e.g, err = gateway.New(gateway.Config{
		Store: e.st, Keys: e.mat, PublicURL: e.srv.URL, Org: "ACME Support", Policy: pol,
		WireGuard: uc, WireGuardEndpoint: uc.LocalAddr().String(),
		Recipients: []age.Recipient{e.ident.Recipient()}, Recording: opt.recording,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.srv.Config.Handler = e.g.Handler()
	if err := e.g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.recDir = filepath.Join(e.dir, "data", gateway.RecordingsDir)
	bc := bastion.Config{
		HostKey: e.mat.SSHHostKey, UserCA: e.mat.SSHUserCA.PublicKey(),
		Sessions: e.g.Broker(), Helpers: e.g.WireGuard(), Users: e.st,
		Recording: e.g.Recording,
		Audit: func(ctx context.Context, ev audit.Event) {
			e.mu.Lock()
			e.events = append(e.events, ev)
			e.mu.Unlock()
			e.g.Audit(ctx, ev)
		},
		WarnBefore: opt.warnBefore,
		MaxConns:   opt.maxConns,
		Logins:     e.st,
		Now:        func() time.Time { return time.Now().Add(opt.skew) },
	}
	if opt.wrapHelpers != nil {
		bc.Helpers = opt.wrapHelpers(bc.Helpers)
	}
	if opt.wrapLogins != nil {
		bc.Logins = opt.wrapLogins(bc.Logins)
	}
	if opt.ownRecordings {
		e.recDir = filepath.Join(e.dir, "own-recordings")
		os.MkdirAll(e.recDir, 0o700)
		bc.Recording = nil
		bc.RecordingsDir, bc.Recipients, bc.Signer = e.recDir, []age.Recipient{e.ident.Recipient()}, e.mat.SigningKey
	}
	e.b, err = bastion.New(bc)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, e.port, _ = net.SplitHostPort(ln.Addr().String())
	if opt.wrapListener != nil {
		ln = opt.wrapListener(ln)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		e.b.ServeSSH(context.Background(), ln)
	}()
	e.knownHs = filepath.Join(e.dir, "known_hosts")
	os.WriteFile(e.knownHs, []byte(fmt.Sprintf("[127.0.0.1]:%s %s", e.port, ssh.MarshalAuthorizedKey(e.mat.SSHHostKey.PublicKey()))), 0o644)
	t.Cleanup(func() {
		e.b.Close()
		<-served
		e.srv.Close()
		e.g.Close()
		uc.Close()
		e.st.Close()
	})
	return e
}

func (e *env) addUser(name, role, team string) {
	e.t.Helper()
	if err := e.st.CreateUser(context.Background(), &users.User{Name: name, DisplayName: name, Role: role, Team: team, CreatedAt: time.Now()}); err != nil {
		e.t.Fatal(err)
	}
}

// updateUser changes the stored account name with change, as an admin would.
func (e *env) updateUser(name string, change func(*users.User)) {
	e.t.Helper()
	ctx := context.Background()
	u, err := e.st.GetUser(ctx, name)
	if err != nil {
		e.t.Fatal(err)
	}
	change(u)
	u.Version++
	if err := e.st.UpdateUser(ctx, u); err != nil {
		e.t.Fatal(err)
	}
}

// testSession is an approved session with a helper enrolled.
type testSession struct {
	ID      string
	consent *assist.Consent
	ep      *assist.Endpoint
}

// newSession creates a session for agent with scopes, approves it as the
// customer and starts the customer's helper.
func (e *env) newSession(agent, scopes string, d time.Duration) *testSession {
	t := e.t
	t.Helper()
	sc, err := session.ParseScopes(scopes)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, token, err := e.g.Broker().Create(ctx, session.Actor{Name: agent, Role: "agent"}, session.NewRequest{
		Agent: agent, AgentName: agent, Team: "t1", Customer: "Bob's Bakery", Scopes: sc, Duration: d,
	})
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.mat.CAPool()}}}
	cs, err := assist.Open(ctx, hc, e.srv.URL+"/c/"+token)
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.Approve(ctx, nil); err != nil {
		t.Fatal(err)
	}
	var priv [32]byte
	rand.Read(priv[:])
	priv[0] &= 248
	priv[31] = (priv[31] & 127) | 64
	pub, _ := curve25519.X25519(priv[:], curve25519.Basepoint)
	_, hk, _ := ed25519.GenerateKey(rand.Reader)
	host, _ := ssh.NewSignerFromKey(hk)
	en, err := cs.Enroll(ctx, wghub.FormatKey([32]byte(pub)), string(ssh.MarshalAuthorizedKey(host.PublicKey())))
	if err != nil {
		t.Fatal(err)
	}
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ep, err := assist.StartEndpoint(assist.EndpointConfig{
		Enrollment: en, PrivateKey: priv, HostKey: host, Conn: uc, Shell: "/bin/sh",
		Env: []string{"PATH=/usr/bin:/bin", "HOME=" + e.dir, "PS1=$ "},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close(); uc.Close() })
	return &testSession{ID: s.ID, consent: cs, ep: ep}
}

// identity is a key pair with a certificate, as supportgate login writes.
type identity struct {
	dir   string
	key   string // private key file
	cert  string // certificate file ("" for none)
	login string // the certificate's login (users.SSHLoginExtension), if any
	token users.Token
}

type certOpts struct {
	principals []string
	after      time.Time
	before     time.Time
	ca         ssh.Signer // nil means the gateway's
	hostCert   bool
	critical   map[string]string // the certificate's critical options

	// The certificate is bound to a login, as the gateway's login binds
	// it: a token stored for tokenUser (default the first principal) of
	// tokenKind (default api), expiring at tokenExpires (default before).
	// login, if set, is the extension's value instead, with no token
	// stored; noLogin leaves the extension out.
	tokenUser    string
	tokenKind    string
	tokenExpires time.Time
	login        string
	noLogin      bool
}

// newIdentity writes a fresh key and, unless opt is nil, a certificate.
func (e *env) newIdentity(opt *certOpts) *identity {
	t := e.t
	t.Helper()
	dir, err := os.MkdirTemp(e.dir, "id")
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	id := &identity{dir: dir, key: filepath.Join(dir, "id_ed25519")}
	os.WriteFile(id.key, pem.EncodeToMemory(block), 0o600)
	sp, _ := ssh.NewPublicKey(pub)
	os.WriteFile(id.key+".pub", ssh.MarshalAuthorizedKey(sp), 0o644)
	if opt == nil {
		return id
	}
	now := time.Now()
	if opt.after.IsZero() {
		opt.after = now.Add(-time.Minute)
	}
	if opt.before.IsZero() {
		opt.before = now.Add(time.Hour)
	}
	ca := opt.ca
	if ca == nil {
		ca = e.mat.SSHUserCA
	}
	typ := uint32(ssh.UserCert)
	if opt.hostCert {
		typ = ssh.HostCert
	}
	var serial [8]byte
	rand.Read(serial[:])
	ext := map[string]string{"permit-pty": "", "permit-port-forwarding": ""}
	switch {
	case opt.noLogin:
	case opt.login != "":
		id.login = opt.login
	default:
		id.token = users.Token{User: opt.tokenUser, Kind: opt.tokenKind, CreatedAt: now, ExpiresAt: opt.tokenExpires}
		if id.token.User == "" && len(opt.principals) > 0 {
			id.token.User = opt.principals[0]
		}
		if id.token.Kind == "" {
			id.token.Kind = users.KindAPI
		}
		if id.token.ExpiresAt.IsZero() {
			id.token.ExpiresAt = opt.before
		}
		rand.Read(id.token.Hash[:])
		if err := e.st.CreateToken(context.Background(), id.token); err != nil {
			t.Fatal(err)
		}
		id.login = users.LoginID(id.token.Hash)
	}
	if id.login != "" {
		ext[users.SSHLoginExtension] = id.login
	}
	cert := &ssh.Certificate{
		Key: sp, Serial: binary.BigEndian.Uint64(serial[:]), CertType: typ, KeyId: "test",
		ValidPrincipals: opt.principals,
		ValidAfter:      uint64(opt.after.Unix()), ValidBefore: uint64(opt.before.Unix()),
		Permissions: ssh.Permissions{
			CriticalOptions: opt.critical,
			Extensions:      ext,
		},
	}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	id.cert = id.key + "-cert.pub"
	os.WriteFile(id.cert, ssh.MarshalAuthorizedKey(cert), 0o644)
	return id
}

// certFor issues user a certificate bound to a new login of theirs.
func (e *env) certFor(user string) *identity {
	return e.newIdentity(&certOpts{principals: []string{user}})
}

// logout deletes the login's token and drops its connections, as the
// gateway's logout does.
func (e *env) logout(id *identity) {
	e.t.Helper()
	if err := e.st.DeleteToken(context.Background(), id.token.Hash); err != nil {
		e.t.Fatal(err)
	}
	e.b.DropLogin(id.login)
}

// sshArgs are OpenSSH options for the bastion with identity id, user
// (the session id), then extra.
func (e *env) sshArgs(id *identity, user string, extra ...string) []string {
	args := []string{"-F", "/dev/null", "-p", e.port, "-i", id.key,
		"-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile=" + e.knownHs, "-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=INFO"}
	if id.cert != "" {
		args = append(args, "-o", "CertificateFile="+id.cert)
	}
	args = append(args, extra...)
	return append(args, user+"@127.0.0.1")
}

// run runs ssh to completion and returns stdout, stderr and the error.
func (e *env) run(id *identity, user string, extra []string, command ...string) (string, string, error) {
	cmd := exec.Command(e.sshBin, append(e.sshArgs(id, user, extra...), command...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Stdin = strings.NewReader("")
	cmd.Env = append(os.Environ(), "HOME="+id.dir)
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// output collects a stream for polling.
type output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

func (o *output) drain(r io.Reader) { io.Copy(o, r) }

// expectEcho runs "echo in" as id with SSH user name user. With want
// empty it must log in; otherwise it must be refused with want on stderr.
// It returns stderr for further checks.
func (e *env) expectEcho(t *testing.T, id *identity, user, want string) string {
	t.Helper()
	out, stderr, err := e.run(id, user, nil, "echo in")
	if want == "" {
		if err != nil || out != "in\n" {
			t.Fatalf("got %q %v (stderr %q), want in", out, err, stderr)
		}
		return stderr
	}
	if err == nil || strings.Contains(out, "in") {
		t.Fatalf("logged in: out %q", out)
	}
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr: got %q, want %q", stderr, want)
	}
	return stderr
}

// waitFor polls cond until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cond()
}

func (e *env) auditEvents(typ string) []audit.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []audit.Event
	for _, ev := range e.events {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}
