// Package bastion is the gateway's SSH server: agents reach the customer's
// helper with plain OpenSSH and the short-lived certificate that login
// issued.
//
// The SSH user name is the session id; the certificate's single principal
// is the user, who must be that session's agent (or a supervisor of its
// team, who watches the live shell read-only). A shell scope gives PTY
// shells and commands on the helper, relayed through the WireGuard hub to
// the helper's SSH endpoint, every byte of output going to the session's
// recording. A tunnel scope gives direct-tcpip forwards to consented ports
// on the helper's loopback, recorded as metadata. Everything else (remote
// forwards, agent and X11 forwarding, subsystems) is refused with a message.
// Each certificate is bound to the login that asked for it
// (users.SSHLoginExtension): it is refused once that login's token is gone
// or expired, and the login's open connections close when it signs out
// (DropLogin) or its token expires.
// When the session ends every connection of it is told why and closed;
// DropUser does the same to one user's connections when their account
// changes.
//
// The Server does not listen: ServeSSH takes a listener from cmd.
package bastion

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"

	"supportgate/gateway/audit"
	"supportgate/gateway/users"
	"supportgate/recorder"
	"supportgate/session"
)

// Sessions is what the bastion asks of the session broker.
type Sessions interface {
	// Get returns a copy of the session or session.ErrNotFound.
	Get(ctx context.Context, id string) (*session.Session, error)
	// Authorize checks need against an active session and returns the
	// session's context, cancelled when it ends.
	Authorize(ctx context.Context, id string, need session.Need) (context.Context, *session.Session, error)
	// Context returns an active session's context.
	Context(id string) (context.Context, error)
	// Touch records activity.
	Touch(id string)
}

// Helpers reaches customers' helpers (the WireGuard hub).
type Helpers interface {
	// Dial opens a connection to the session's helper for need, after
	// authorising it; it is closed when the session ends.
	Dial(ctx context.Context, sessionID string, need session.Need) (net.Conn, error)
	// HostKey is the helper's enrolled SSH host key.
	HostKey(sessionID string) (ssh.PublicKey, error)
}

// Users looks up accounts: authentication checks that an agent's is
// enabled and still an agent's (or a supervisor's), and that a
// supervisor's is enabled and of the session's team.
type Users interface {
	GetUser(ctx context.Context, name string) (*users.User, error)
}

// Logins looks up the login a certificate is bound to: the bearer token
// whose hash the certificate's users.SSHLoginExtension names. Every
// authentication looks, so that a certificate ends with its login.
type Logins interface {
	// GetToken returns the token with the hash, or an error wrapping
	// users.ErrNotFound if there is none.
	GetToken(ctx context.Context, hash [32]byte) (users.Token, error)
}

var (
	_ Sessions = (*session.Broker)(nil)
	_ Logins   = users.Store(nil) // the gateway's store (sqlite.Store) as it is
)

// Config configures a Server.
type Config struct {
	HostKey  ssh.Signer    // required: presented to agents and to helpers
	UserCA   ssh.PublicKey // required: the CA that signs login certificates
	Sessions Sessions      // required
	Helpers  Helpers       // nil: shells and tunnels are refused (device access disabled)
	Users    Users         // required: every login checks the account
	Logins   Logins        // required: every login checks the certificate's login (token)

	// Recording, if set, returns the session's recording writer, shared
	// with the session's other transports and closed by its owner when
	// the session ends (gateway.Gateway.Recording). Without it the
	// bastion writes its own: one file per session, RecordingsDir/ID.sgrec,
	// encrypted to Recipients and signed with Signer, all three required,
	// with RecordInput and Redact (the shared recording has its owner's).
	Recording     func(sessionID string) (*recorder.Writer, error)
	RecordingsDir string
	Recipients    []age.Recipient
	Signer        ed25519.PrivateKey
	RecordInput   bool                  // record keystrokes too (off by default)
	Redact        recorder.RedactConfig // patterns masked before encryption

	// Audit receives channel.opened, channel.closed, shell.command and
	// session.watched events; nil drops them.
	Audit func(context.Context, audit.Event)

	// Presence, if set, is told when someone starts or stops using a
	// session through the bastion: the agent's shell or command ("shell"),
	// a supervisor watching ("watch"), a forward ("forward"), so the
	// customer's views can say who is connected. Calls for one session are
	// balanced: every joined=true is followed by one joined=false.
	Presence func(sessionID string, p Participant, joined bool)

	Now    func() time.Time // nil means time.Now
	Logger *slog.Logger     // nil discards

	// HandshakeTimeout bounds authentication (default 10 s).
	HandshakeTimeout time.Duration
	// MaxConns caps authenticated connections (default 4096); more are
	// closed once authenticated.
	MaxConns int
	// MaxHandshakes caps connections not yet authenticated (default 256)
	// and MaxHandshakesPerSource those from one source, an IPv4 address
	// or an IPv6 /64 (default 16); more are closed on accept. They are
	// counted apart from MaxConns so that clients who never authenticate
	// cannot take agents' places, and one source cannot take them all.
	MaxHandshakes          int
	MaxHandshakesPerSource int
	// WarnBefore is how long before the end the agent is warned (default 1 min).
	WarnBefore time.Duration
}

// Participant is someone using a session through the bastion.
type Participant struct {
	Name    string `json:"name"`
	Role    string `json:"role"`    // agent or supervisor
	Channel string `json:"channel"` // shell, watch or forward
}

// Config's defaults.
const (
	DefaultHandshakeTimeout       = 10 * time.Second
	DefaultMaxConns               = 4096
	DefaultMaxHandshakes          = 256
	DefaultMaxHandshakesPerSource = 16
)

// Server is the SSH bastion. ServeSSH may be called for several listeners.
type Server struct {
	cfg    Config
	sshCfg *ssh.ServerConfig
	log    *slog.Logger

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // connection handlers, session state goroutines

	mu       sync.Mutex // guards the fields below
	lns      map[net.Listener]struct{}
	conns    map[net.Conn]struct{} // every open connection, for Close
	shaking  map[netip.Prefix]int  // connections in the handshake, by source
	nshaking int                   // the sum of shaking
	byUser   map[string]map[*conn]struct{}
	nauthed  int               // authenticated connections: the sum of byUser's
	drops    uint64            // DropUser and DropLogin calls so far
	dropped  map[string]uint64 // drops at each user's last DropUser; one entry per account at most
	sessions map[string]*sessState
	closed   bool

	// droppedLogins, guarded by mu too, is drops at each login's
	// DropLogin. Logins are many, so an entry is kept only while it can
	// refuse someone: while a connection accepted before it awaits
	// admission (see forgetLoginDropsLocked).
	droppedLogins map[string]uint64
	unadmitted    map[net.Conn]uint64 // drops when each connection not yet admitted was accepted
}

// New checks cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.HostKey == nil:
		return nil, errors.New("bastion: Config.HostKey is required")
	case cfg.UserCA == nil:
		return nil, errors.New("bastion: Config.UserCA is required")
	case cfg.Sessions == nil:
		return nil, errors.New("bastion: Config.Sessions is required")
	case cfg.Users == nil:
		return nil, errors.New("bastion: Config.Users is required")
	case cfg.Logins == nil:
		return nil, errors.New("bastion: Config.Logins is required")
	case cfg.Recording == nil && (cfg.RecordingsDir == "" || len(cfg.Recipients) == 0 || len(cfg.Signer) != ed25519.PrivateKeySize):
		return nil, errors.New("bastion: Config.Recording, or RecordingsDir, Recipients and Signer, are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Audit == nil {
		cfg.Audit = func(context.Context, audit.Event) {}
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxHandshakes <= 0 {
		cfg.MaxHandshakes = DefaultMaxHandshakes
	}
	if cfg.MaxHandshakesPerSource <= 0 {
		cfg.MaxHandshakesPerSource = DefaultMaxHandshakesPerSource
	}
	if cfg.WarnBefore <= 0 {
		cfg.WarnBefore = time.Minute
	}
	s := &Server{
		cfg: cfg, log: cfg.Logger,
		lns: map[net.Listener]struct{}{}, conns: map[net.Conn]struct{}{}, sessions: map[string]*sessState{},
		shaking: map[netip.Prefix]int{}, byUser: map[string]map[*conn]struct{}{}, dropped: map[string]uint64{},
		droppedLogins: map[string]uint64{}, unadmitted: map[net.Conn]uint64{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.sshCfg = &ssh.ServerConfig{
		PublicKeyCallback:           s.authKey,
		PasswordCallback:            refusePassword,
		KeyboardInteractiveCallback: refuseKeyboard,
		ServerVersion:               "SSH-2.0-supportgate",
		MaxAuthTries:                6,
	}
	// AES-GCM only: with AES-NI it costs a fraction of x/crypto's
	// chacha20-poly1305 (no assembly for SSH's variant), and clients that
	// list ChaCha first would otherwise get it. Every OpenSSH since 6.2 has it.
	s.sshCfg.Ciphers = fastCiphers
	s.sshCfg.AddHostKey(cfg.HostKey)
	return s, nil
}

// ServeSSH accepts connections on ln until ctx is done, Close is called
// or ln fails. It closes ln before returning; connections it accepted
// run on until their session ends or Close.
func (s *Server) ServeSSH(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return net.ErrClosed
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer func() {
		s.mu.Lock()
		delete(s.lns, ln)
		s.mu.Unlock()
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || s.ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return fmt.Errorf("bastion: accept: %w", err)
		}
		if !s.track(c) {
			c.Close()
			if s.ctx.Err() != nil {
				return nil
			}
			continue // over MaxHandshakes
		}
		go func() {
			defer s.untrack(c)
			// The source is learnt here, not in the accept loop: behind a
			// load balancer it comes in a PROXY protocol header, which
			// RemoteAddr waits for (gateway/proxies), and one slow header
			// must not hold up everyone else's connections.
			src, ok := s.placeSource(c)
			if !ok {
				return // over MaxHandshakesPerSource
			}
			s.serveConn(c, src)
		}()
	}
}

// track admits a new connection to the handshake if all sources together
// are not at their cap, and counts the goroutine that will serve it until
// untrack.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return false
	case s.nshaking >= s.cfg.MaxHandshakes:
		// No address: a load balancer's connection would wait for its
		// PROXY protocol header here.
		s.log.Warn("bastion: too many unauthenticated connections; refusing", "max", s.cfg.MaxHandshakes)
		return false
	}
	s.nshaking++
	s.conns[c] = struct{}{}
	s.unadmitted[c] = s.drops
	s.wg.Add(1)
	return true
}

// placeSource learns the source of a tracked connection and keeps its place in
// the handshake if that source is not at its cap; otherwise it gives the
// place back.
func (s *Server) placeSource(c net.Conn) (netip.Prefix, bool) {
	src := sourceOf(c.RemoteAddr())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.shaking[src] >= s.cfg.MaxHandshakesPerSource {
		s.nshaking--
		if !s.closed {
			// Debug only: a source at its cap could otherwise flood the log.
			s.log.Debug("bastion: too many unauthenticated connections from one source; refusing", "max", s.cfg.MaxHandshakesPerSource, "source", src.String())
		}
		return src, false
	}
	s.shaking[src]++
	return src, true
}

// handshakeDone releases the handshake place that track and placeSource gave
// a connection from src.
func (s *Server) handshakeDone(src netip.Prefix) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nshaking--
	if s.shaking[src]--; s.shaking[src] <= 0 {
		delete(s.shaking, src)
	}
}

// sourceOf is the source a connection counts against: its IPv4 address,
// or its IPv6 /64, as one host commonly holds a whole /64. Addresses that
// are not IP (pipes in tests) all share the zero prefix.
func sourceOf(a net.Addr) netip.Prefix {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Prefix{}
	}
	ip := ap.Addr().Unmap()
	bits := 64
	if ip.Is4() {
		bits = 32
	}
	p, _ := ip.Prefix(bits)
	return p
}

// admit registers an authenticated connection, raw, under its user,
// unless MaxConns are already open or DropUser dropped the user, or
// DropLogin its login, after authentication began (drops is the count it
// saw then).
func (s *Server) admit(cn *conn, raw net.Conn, drops uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.unadmitted, raw)
	switch {
	case s.closed:
		return errors.New("gateway is shutting down")
	case s.nauthed >= s.cfg.MaxConns:
		return fmt.Errorf("too many connections (%d)", s.cfg.MaxConns)
	case s.dropped[cn.principal] > drops:
		return errors.New("the user was dropped during authentication")
	case s.droppedLogins[cn.login] > drops:
		return errors.New("the login was signed out during authentication")
	}
	m := s.byUser[cn.principal]
	if m == nil {
		m = map[*conn]struct{}{}
		s.byUser[cn.principal] = m
	}
	m[cn] = struct{}{}
	s.nauthed++
	return nil
}

// leave undoes admit.
func (s *Server) leave(cn *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.byUser[cn.principal]
	if _, ok := m[cn]; !ok {
		return
	}
	delete(m, cn)
	if len(m) == 0 {
		delete(s.byUser, cn.principal)
	}
	s.nauthed--
}

// DropUser closes every connection of the user name, as agent or as
// supervisor, telling their shells why; they are gone within a second.
// Call it when the user is locked, disabled or deleted, or their role or
// team changes, after the change is stored: a new connection's
// authentication then sees the change, and one whose authentication began
// before DropUser is refused when it completes.
func (s *Server) DropUser(name string) {
	s.mu.Lock()
	s.drops++
	s.dropped[name] = s.drops
	cns := make([]*conn, 0, len(s.byUser[name]))
	for cn := range s.byUser[name] {
		cns = append(cns, cn)
	}
	s.mu.Unlock()
	for _, cn := range cns {
		s.log.Info("bastion: dropping connection", "session", cn.id, "user", name, "role", cn.role)
		cn.drop(msgAccessWithdrawn)
	}
}

// DropLogin closes every connection authenticated with a certificate of
// the login (users.LoginID of its token's hash), as agent or as
// supervisor, telling their shells why; they are gone within a second.
// Other logins of the same user keep theirs. Call it after the login's
// token is deleted (logout): a new connection's authentication then finds
// the token gone, and one whose authentication began before DropLogin is
// refused when it completes.
func (s *Server) DropLogin(login string) {
	s.mu.Lock()
	s.drops++
	s.droppedLogins[login] = s.drops
	s.forgetLoginDropsLocked()
	// A scan rather than a second index: logouts are rare, and an index
	// would have to be kept in step with byUser.
	var cns []*conn
	for _, m := range s.byUser {
		for cn := range m {
			if cn.login == login {
				cns = append(cns, cn)
			}
		}
	}
	s.mu.Unlock()
	for _, cn := range cns {
		s.log.Info("bastion: dropping connection: login signed out", "session", cn.id, "user", cn.principal, "role", cn.role)
		cn.drop(msgSignedOut)
	}
}

// forgetLoginDropsLocked forgets the DropLogin counts that can no longer
// refuse anyone. An entry refuses a connection whose authentication read
// a smaller drops; such a connection was accepted before the entry was
// made, so once every connection still awaiting admission was accepted
// at or after it, nothing remains for it to refuse. Connections accepted
// later read drops at least as large.
func (s *Server) forgetLoginDropsLocked() {
	oldest := s.drops
	for _, d := range s.unadmitted {
		oldest = min(oldest, d)
	}
	for login, d := range s.droppedLogins {
		if d <= oldest {
			delete(s.droppedLogins, login)
		}
	}
}

// untrack forgets c, closes it and ends the count that track began.
func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	delete(s.unadmitted, c)
	s.mu.Unlock()
	c.Close()
	s.wg.Done()
}

// Close stops every listener and connection, closes the open recordings
// and returns once all of it has stopped. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.lns {
		ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// Conns reports how many SSH connections are open, authenticated or not.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// fastCiphers are the ciphers the bastion speaks, to agents and helpers.
var fastCiphers = []string{"aes128-gcm@openssh.com", "aes256-gcm@openssh.com"}

// Permission extensions set by authentication.
const (
	extPrincipal    = "supportgate-principal"
	extRole         = "supportgate-role"
	extDrops        = "supportgate-drops"         // Server.drops when authentication began
	extLogin        = "supportgate-login"         // the certificate's login (users.LoginID)
	extLoginExpires = "supportgate-login-expires" // when its token expires, Unix nanoseconds
)

// Why a connection was dropped, for its shells.
const (
	msgAccessWithdrawn = "your access to this session was withdrawn"
	msgSignedOut       = "your login was signed out; run `supportgate login` again"
	msgLoginExpired    = "your login expired; run `supportgate login` again"
)

func refusePassword(ssh.ConnMetadata, []byte) (*ssh.Permissions, error) {
	return nil, &ssh.BannerError{Err: errors.New("password refused"), Message: msgNoPasswords}
}

func refuseKeyboard(ssh.ConnMetadata, ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
	return nil, &ssh.BannerError{Err: errors.New("keyboard-interactive refused"), Message: msgNoPasswords}
}

const msgNoPasswords = "supportgate: passwords are not accepted here. Run `supportgate login`, then " +
	"`supportgate ssh SESSION` (or ssh with its certificate).\r\n"

// connConfig is the server configuration for one connection. OpenSSH
// offers the bare key after the certificate made from it is refused; that
// key is refused without a banner, since "plain keys are not accepted"
// would follow the certificate's refusal and hide its reason (a session
// that has ended, say) behind a wrong one.
func (s *Server) connConfig() *ssh.ServerConfig {
	cfg := *s.sshCfg     // NewServerConn copies it as well
	var certRefused bool // callbacks run on the handshake's one goroutine
	cfg.PublicKeyCallback = func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
		_, isCert := key.(*ssh.Certificate)
		if !isCert && certRefused {
			return nil, errors.New("plain key after a refused certificate")
		}
		perms, err := s.authKey(meta, key)
		if err != nil && isCert {
			certRefused = true
		}
		return perms, err
	}
	return &cfg
}

// authKey accepts only a user certificate from the gateway's CA, valid
// now, with one principal who is the session's agent, with an enabled
// agent's or supervisor's account, or an enabled supervisor of its team.
// The certificate's source-address, if any, is enforced. The SSH user
// name is the session id.
func (s *Server) authKey(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	refuse := func(format string, args ...any) (*ssh.Permissions, error) {
		msg := fmt.Sprintf(format, args...)
		return nil, &ssh.BannerError{Err: errors.New(msg), Message: "supportgate: " + msg + "\r\n"}
	}
	cert, ok := key.(*ssh.Certificate)
	if !ok {
		return refuse("plain keys are not accepted: use the certificate from `supportgate login` (id_ed25519-cert.pub)")
	}
	// Read before the account is: a DropUser from now on refuses this
	// connection in admit, even if the lookup below saw the old account.
	drops := s.dropCount()
	checker := &ssh.CertChecker{
		IsUserAuthority: func(k ssh.PublicKey) bool { return bytes.Equal(k.Marshal(), s.cfg.UserCA.Marshal()) },
		Clock:           s.cfg.Now,
		// x/crypto enforces source-address on the returned Permissions'
		// CriticalOptions; any other critical option (force-command) is
		// refused, as the bastion cannot honour it.
		SupportedCriticalOptions: []string{sourceAddress},
	}
	if cert.CertType != ssh.UserCert {
		return refuse("not a user certificate")
	}
	if !checker.IsUserAuthority(cert.SignatureKey) {
		return refuse("certificate is not signed by this gateway; run `supportgate login`")
	}
	if len(cert.ValidPrincipals) != 1 {
		return refuse("certificate must name exactly one user")
	}
	principal := cert.ValidPrincipals[0]
	if err := checker.CheckCert(principal, cert); err != nil {
		now := s.cfg.Now()
		if cert.ValidBefore != ssh.CertTimeInfinity && now.Unix() >= int64(cert.ValidBefore) {
			return refuse("certificate expired at %s; run `supportgate login` again",
				time.Unix(int64(cert.ValidBefore), 0).UTC().Format(time.RFC3339))
		}
		return refuse("certificate refused: %v", err)
	}
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	// The signature is checked: the login is the gateway's word. It is
	// checked before the session, so that a certificate whose login has
	// ended learns nothing about sessions.
	login, ok := cert.Extensions[users.SSHLoginExtension]
	if !ok {
		return refuse("certificate is not bound to a login (issued before logins were); run `supportgate login` again")
	}
	tok, err := s.loginOf(ctx, login, principal)
	if err != nil {
		return refuse("%v", err)
	}
	id := meta.User()
	sess, err := s.cfg.Sessions.Get(ctx, id)
	if err != nil || (sess.Agent != principal && !s.supervises(ctx, principal, sess)) {
		// The same answer whether the session exists or not.
		return refuse("no session %q for %s (the SSH user name is the session id)", id, principal)
	}
	role := "supervisor"
	if sess.Agent == principal {
		role = "agent"
		if !s.mayServe(ctx, principal) {
			return refuse("account %s may not connect (disabled, or no longer an agent)", principal)
		}
	}
	if sess.State != session.Active {
		return refuse("session %s is %s, not active", id, sess.State)
	}
	return &ssh.Permissions{
		CriticalOptions: maps.Clone(cert.CriticalOptions),
		Extensions: map[string]string{
			extPrincipal: principal, extRole: role, extDrops: strconv.FormatUint(drops, 10),
			extLogin: login, extLoginExpires: strconv.FormatInt(tok.ExpiresAt.UnixNano(), 10),
		},
	}, nil
}

// errLoginEnded is the one answer for a certificate whose login is signed
// out, expired, revoked or another user's: it tells the certificate's
// holder what to do and a thief nothing about which it is.
var errLoginEnded = errors.New("the login this certificate was issued to has ended (signed out or expired); run `supportgate login` again")

// loginOf returns the token of the certificate's login, if it is an API
// login of principal that has not expired by Config.Now. Anything else,
// a failed look-up included, is refused.
func (s *Server) loginOf(ctx context.Context, login, principal string) (users.Token, error) {
	h, err := users.ParseLoginID(login)
	if err != nil {
		return users.Token{}, errLoginEnded
	}
	t, err := s.cfg.Logins.GetToken(ctx, h)
	if err != nil {
		if !errors.Is(err, users.ErrNotFound) {
			s.log.Error("bastion: looking up a certificate's login", "user", principal, "err", err)
			return users.Token{}, errors.New("the certificate's login cannot be checked now; try again shortly")
		}
		return users.Token{}, errLoginEnded
	}
	if t.Kind != users.KindAPI || t.User != principal || !s.cfg.Now().Before(t.ExpiresAt) {
		return users.Token{}, errLoginEnded
	}
	return t, nil
}

// sourceAddress is the certificate critical option that limits where it
// may be used from.
const sourceAddress = "source-address"

func (s *Server) dropCount() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.drops
}

// mayServe reports whether name has an enabled account that may serve
// customers as a session's agent: an agent's or a supervisor's.
func (s *Server) mayServe(ctx context.Context, name string) bool {
	u, err := s.cfg.Users.GetUser(ctx, name)
	return err == nil && !u.Disabled && (u.Role == "agent" || u.Role == "supervisor")
}

// supervises reports whether name is an enabled supervisor of the
// session's team.
func (s *Server) supervises(ctx context.Context, name string, sess *session.Session) bool {
	if sess.Team == "" {
		return false
	}
	u, err := s.cfg.Users.GetUser(ctx, name)
	return err == nil && !u.Disabled && u.Role == "supervisor" && u.Team == sess.Team
}

// endMessage says why a session ended, for the agent's terminal.
func endMessage(s *session.Session) string {
	if s == nil {
		return "the session has ended"
	}
	switch s.EndReason {
	case session.EndExpired:
		return "the session's time box ran out"
	case session.EndRevoked:
		if s.EndedBy == "customer" {
			return "the customer revoked access"
		}
		return "the session was revoked by " + s.EndedBy
	case session.EndIdle:
		return "the session was idle too long"
	case session.EndLocked:
		return "the agent's account was locked"
	case session.EndCompleted:
		return "the session was completed"
	case "":
		return "the session has ended"
	}
	return "the session ended (" + string(s.EndReason) + ")"
}
