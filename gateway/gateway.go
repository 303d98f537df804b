// Package gateway is the supportgate server: the HTTPS API and customer
// consent API, authentication (argon2id passwords, TOTP, bearer tokens,
// SSH user certificates), role checks on every route, the audit log
// bridge and metrics. It does not listen: cmd/supportgate hands it
// listeners. Session state belongs to the session.Broker it owns.
package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	"github.com/prometheus/client_golang/prometheus"

	"supportgate/gateway/audit"
	"supportgate/gateway/detect"
	"supportgate/gateway/identity"
	"supportgate/gateway/keys"
	"supportgate/gateway/proxies"
	"supportgate/gateway/rtc"
	"supportgate/gateway/users"
	"supportgate/gateway/wghub"
	"supportgate/recorder"
	"supportgate/session"
)

// Store is all the gateway persists: sessions, users and tokens, the audit
// chain and the heartbeat. The SQLite store implements it (PostgreSQL
// later).
type Store interface {
	session.HighWaterStore
	users.Store
	audit.Store
}

// Config configures a Gateway. Fields marked required must be set; the
// others have documented defaults.
type Config struct {
	Store     Store          // required
	Keys      *keys.Material // required: TLS, SSH CA, signing key
	PublicURL string         // required: base of consent links, as https://host:port
	Org       string         // organisation name shown to customers (default "supportgate")
	Policy    session.Policy // session policy; zero fields take defaults

	TokenTTL       time.Duration           // bearer token lifetime (default 8h, at most 8h)
	PasswordParams identity.PasswordParams // zero means identity.DefaultPasswordParams
	Lockout        identity.Lockout        // zero means 5 failures lock for 15 minutes

	Clock    session.Clock         // nil means the wall clock; held steady (session.SteadyClock) unless it is one
	Rand     io.Reader             // nil means crypto/rand
	Logger   *slog.Logger          // nil discards
	Registry prometheus.Registerer // nil means a private registry, served on /metrics

	// Recipients are the compliance team's age recipients: recordings are
	// encrypted to them and the gateway cannot read them back.
	Recipients []age.Recipient

	// WireGuard, when set, runs the WireGuard hub on this socket (opened
	// by the caller, closed by it after Close); helpers are told to send
	// to WireGuardEndpoint (host:port). Without it assist enrollment
	// answers 503.
	WireGuard         *net.UDPConn
	WireGuardEndpoint string

	// OnAudit, if set, is called with every audit record after it is
	// stored, in the goroutine that stored it (the detector's feed). It
	// must return quickly and must not call back into the gateway.
	OnAudit func(audit.Record)

	// OnUserDropped, if set, is called with a user's name after their
	// access was cut (their account locked, their role or team changed),
	// once the gateway has closed their websockets: the caller closes
	// what it serves for them beside the gateway, such as their SSH
	// connections. It is called in the goroutine that cut the access (an
	// admin's request, the auto-lock), so it must not block for long.
	OnUserDropped func(name string)

	// OnLoginDropped, if set, is called with a login's identifier
	// (users.LoginID of its token's hash, which its SSH certificate names
	// in users.SSHLoginExtension) after the login was signed out, once the
	// gateway has deleted its token and closed its websockets: the caller
	// closes what it serves for that login beside the gateway, such as its
	// SSH connections (bastion.DropLogin). Other logins of the same user
	// are not touched. It is called in the logout request's goroutine,
	// holding no gateway lock, so it must not block for long.
	OnLoginDropped func(login string)

	// Detect, if set, runs the anomaly detector over the audit stream
	// (its OnAlert and OnCritical are the gateway's). AutoLock locks an
	// agent, ending all their sessions, when an alert about them is
	// critical.
	Detect   *detect.Config
	AutoLock bool

	// SSHPort is the SSH bastion's public port, told to clients at login
	// (ssh_port); 0 when no bastion is served.
	SSHPort int

	// RTC configures the WebRTC relay of screen shares: the ICE UDP port
	// range, an ICE-TCP listener, TURN servers (see rtc.Config).
	RTC rtc.Config

	// Recording configures the recordings of sessions beyond their keys.
	Recording RecordingConfig

	// TrustedProxies are the reverse proxies (addresses as /32 or /128,
	// or networks) in front of the gateway whose X-Forwarded-For it
	// believes: a request whose TCP peer is one of them comes from the
	// rightmost address in that header that is not (see package proxies).
	// That address is the one rate limits, lockouts and the audit log see.
	// Empty trusts nobody: the client is the TCP peer. Each prefix must be
	// masked and narrower than /0 (proxies.New).
	TrustedProxies []netip.Prefix
}

// RecordingConfig configures every session's recording, shared by all its
// transports.
type RecordingConfig struct {
	// Redact adds patterns to mask besides card numbers.
	Redact recorder.RedactConfig
	// RecordInput records what agents type in shells (off by default:
	// keystrokes include passwords typed at prompts).
	RecordInput bool
	// MaxBytes caps a recording's size; 0 means recorder.DefaultMaxBytes.
	// A session whose recording reaches it, or whose recording fails, is
	// ended: nothing of a session goes unrecorded.
	MaxBytes int64
}

// MaxTokenTTL caps bearer tokens and SSH certificates.
const MaxTokenTTL = 8 * time.Hour

// Gateway is the running server state.
type Gateway struct {
	store    Store
	keys     *keys.Material
	public   *url.URL
	org      string
	clock    session.Clock
	rand     io.Reader
	log      *slog.Logger
	tokenTTL time.Duration
	sshPort  int
	lockout  identity.Lockout
	hasher   *identity.Hasher
	csrfKey  []byte
	proxies  *proxies.Trusted // Config.TrustedProxies; nil trusts nobody (client.go)

	authCache authCache  // API tokens resolved recently; see authcache.go
	staff     staffConns // open staff websockets, ended with their user's access; see staffconns.go

	onUserDropped  func(name string)  // Config.OnUserDropped
	onLoginDropped func(login string) // Config.OnLoginDropped

	broker  *session.Broker
	audit   *audit.Log
	metrics *metrics
	hub     *hub
	wg      *wghub.Hub // nil without Config.WireGuard
	limits  *limits
	ghosts  *ghostLocks // login failures to names that cannot sign in (ghosts.go)
	handler http.Handler

	recipients []age.Recipient
	recCfg     RecordingConfig
	locked     lockedAgents // accounts locked in this run (users_api.go)
	onAudit    func(audit.Record)
	detector   *detect.Detector  // nil without Config.Detect
	locks      chan detect.Alert // critical alerts for runLocks; nil without AutoLock
	rtc        *rtc.Relay        // screen share relay (rtc_api.go)
	recs       recordings        // open recordings, one per session (recordings.go)
	presence   presence          // who is connected to each session (presence.go)
	auditIndex sessionAuditStore // finds a session's audit records; nil if the store cannot (recordings_api.go)
	helpers    helperStore       // keeps enrolled helpers across restarts; nil if the store cannot (assist_api.go)

	heart     heartbeat          // stores the clock's time while running (heartbeat.go)
	stop      context.CancelFunc // stops the goroutines Start began
	bg        sync.WaitGroup     // those goroutines
	closeOnce sync.Once
	closeErr  error
}

// New checks cfg and builds a Gateway. Call Start before serving.
func New(cfg Config) (*Gateway, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("gateway: Config.Store is required")
	case cfg.Keys == nil:
		return nil, errors.New("gateway: Config.Keys is required")
	case cfg.PublicURL == "":
		return nil, errors.New("gateway: Config.PublicURL is required")
	}
	pub, err := url.Parse(cfg.PublicURL)
	if err != nil || pub.Scheme != "https" || pub.Host == "" {
		return nil, fmt.Errorf("gateway: public URL %q must be https://HOST[:PORT]", cfg.PublicURL)
	}
	pub.Path = strings.TrimRight(pub.Path, "/")
	trusted, err := proxies.New(cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if len(cfg.TrustedProxies) == 0 {
		trusted = nil // nobody: clientAddr is the TCP peer, untouched
	}
	g := &Gateway{
		store: cfg.Store, keys: cfg.Keys, public: pub, org: cfg.Org,
		clock: cfg.Clock, rand: cfg.Rand, log: cfg.Logger,
		tokenTTL: cfg.TokenTTL, lockout: cfg.Lockout, recipients: cfg.Recipients, recCfg: cfg.Recording,
		onAudit: cfg.OnAudit, onUserDropped: cfg.OnUserDropped, onLoginDropped: cfg.OnLoginDropped,
		stop: func() {}, sshPort: cfg.SSHPort, proxies: trusted,
	}
	g.store = g.authCache.watch(cfg.Store)
	g.auditIndex, _ = cfg.Store.(sessionAuditStore)
	g.helpers, _ = cfg.Store.(helperStore)
	if g.org == "" {
		g.org = "supportgate"
	}
	// Held steady, like the broker's (which takes this one as is), so
	// that a wall clock set back stretches no token, lockout or link and
	// the gateway's times agree with the broker's.
	g.clock = session.Steady(g.clock)
	if g.rand == nil {
		g.rand = rand.Reader
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.tokenTTL <= 0 || g.tokenTTL > MaxTokenTTL {
		g.tokenTTL = MaxTokenTTL
	}
	params := cfg.PasswordParams
	if params == (identity.PasswordParams{}) {
		params = identity.DefaultPasswordParams
	}
	if g.hasher, err = identity.NewHasher(g.rand, params, 2); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	// The CSRF key is derived from the signing key so that tokens survive
	// a restart without storing another secret.
	mac := hmac.New(sha256.New, cfg.Keys.SigningKey.Seed())
	mac.Write([]byte("supportgate csrf v1"))
	g.csrfKey = mac.Sum(nil)

	reg := cfg.Registry
	var gatherer prometheus.Gatherer
	if reg == nil {
		r := prometheus.NewRegistry()
		reg, gatherer = r, r
	} else if gt, ok := reg.(prometheus.Gatherer); ok {
		gatherer = gt
	} else {
		gatherer = prometheus.DefaultGatherer
	}
	if g.metrics, err = newMetrics(reg, gatherer); err != nil {
		return nil, fmt.Errorf("gateway: metrics: %w", err)
	}
	g.audit, err = audit.New(audit.Config{Store: cfg.Store, Signer: cfg.Keys.SigningKey, Now: g.clock.Now, Logger: g.log})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g.hub = newHub()
	if cfg.RTC.Logger == nil {
		cfg.RTC.Logger = g.log
	}
	if g.rtc, err = rtc.New(cfg.RTC); err != nil {
		g.audit.Close()
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g.heart = heartbeat{store: cfg.Store, clock: g.clock, log: g.log}
	g.limits = newLimits(g.clock.Now)
	g.ghosts = newGhostLocks()
	g.broker, err = session.NewBroker(session.Config{
		Store: newAuditedSessions(cfg.Store, g.audit, g.record, g.recorded), Policy: cfg.Policy, Clock: g.clock, Rand: g.rand, Logger: g.log,
		OnEvent: g.sessionEvent,
	})
	if err != nil {
		g.audit.Close()
		return nil, fmt.Errorf("gateway: %w", err)
	}
	err = g.metrics.registerBrokerGauges(reg, g.broker.OpenCount, g.broker.UnsavedEnds)
	if err == nil {
		err = g.metrics.registerRelay(reg, g.rtc.Stats)
	}
	if err != nil {
		g.audit.Close()
		return nil, fmt.Errorf("gateway: metrics: %w", err)
	}
	if err := g.startWireGuard(cfg); err != nil {
		g.broker.Close()
		g.audit.Close()
		return nil, err
	}
	if err := g.startDetector(cfg, reg); err != nil {
		g.Close()
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g.handler = g.routes()
	return g, nil
}

// Start takes over the sessions stored by an earlier run and their
// timers, and starts the audit checkpoint ticker, token cleanup and the
// heartbeat (HeartbeatInterval), which run until Close.
func (g *Gateway) Start(ctx context.Context) error {
	// Sessions active when the last run stopped were being recorded.
	wasActive, err := g.store.ListSessions(ctx, session.Filter{State: session.Active, Limit: session.MaxList})
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	if err := g.broker.Start(ctx); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	g.record(ctx, audit.Event{Type: "gateway.started", Actor: "system", Role: "system"})
	g.flagCutShort(ctx, wasActive)
	if err := g.restoreHelpers(ctx); err != nil {
		return err
	}
	bg, stop := context.WithCancel(context.Background())
	g.stop = stop
	g.bg.Add(1)
	go func() {
		defer g.bg.Done()
		g.housekeeping(bg)
	}()
	if g.locks != nil {
		g.bg.Add(1)
		go func() {
			defer g.bg.Done()
			g.runLocks(bg)
		}()
	}
	g.heart.start()
	return nil
}

// housekeeping signs an audit checkpoint every interval, so that events
// never wait long for a signature in a quiet period, and drops expired
// tokens.
func (g *Gateway) housekeeping(ctx context.Context) {
	t := time.NewTicker(audit.DefaultCheckpointInterval)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := g.audit.Checkpoint(ctx); err != nil && ctx.Err() == nil {
			g.log.Error("audit checkpoint", "err", err)
		}
		if n%30 == 0 {
			if _, err := g.store.DeleteExpiredTokens(ctx, g.clock.Now()); err != nil && ctx.Err() == nil {
				g.log.Error("deleting expired tokens", "err", err)
			}
		}
	}
}

// Handler serves the HTTPS API, the customer API, /healthz and /metrics.
func (g *Gateway) Handler() http.Handler { return g.handler }

// Broker is the session broker, for the transports (SSH, WireGuard,
// WebRTC) that share this gateway.
func (g *Gateway) Broker() *session.Broker { return g.broker }

// Close stops the timers, closes every live channel and websocket, and
// writes a final heartbeat and audit checkpoint. It is idempotent.
func (g *Gateway) Close() error {
	g.closeOnce.Do(func() {
		g.stop()
		g.bg.Wait()
		beating := g.heart.stop()
		// Screen shares close before the broker cancels the sessions'
		// contexts, so that their pages hear the gateway stopping (and
		// reconnect), not their sessions ending.
		g.rtc.Close()
		err := g.broker.Close()
		g.recs.close()
		g.hub.close()
		if g.wg != nil {
			g.wg.Close()
		}
		g.record(context.Background(), audit.Event{Type: "gateway.stopped", Actor: "system", Role: "system"})
		if beating {
			g.heart.beat() // the last: the time the gateway stopped at
		}
		if g.detector != nil {
			// Drains its queue and saves baselines; its alerts still reach
			// the audit log, which closes last.
			err = errors.Join(err, g.detector.Close())
		}
		g.closeErr = errors.Join(err, g.audit.Close())
	})
	return g.closeErr
}

// Recording returns the shared recording writer of an active session,
// for the transports that run beside the gateway (the SSH bastion); see
// recording. Callers must not Close it.
func (g *Gateway) Recording(sessionID string) (*recorder.Writer, error) {
	return g.recording(sessionID)
}

// Audit appends an event to the audit log, for the transports that run
// beside the gateway (the SSH bastion); see record.
func (g *Gateway) Audit(ctx context.Context, e audit.Event) { g.record(ctx, e) }

// record appends an audit event. A failure to audit is logged loudly; the
// caller's action has already happened and cannot be undone here.
func (g *Gateway) record(ctx context.Context, e audit.Event) {
	if e.Time.IsZero() {
		e.Time = g.clock.Now()
	}
	rec, err := g.audit.Append(context.WithoutCancel(ctx), e)
	if err != nil {
		g.metrics.auditFailures.Inc()
		g.log.Error("audit append failed", "type", e.Type, "err", err)
		return
	}
	g.recorded(rec)
}

// recorded reports an audit record once it is stored, by record or
// together with a session change (auditedSessions).
func (g *Gateway) recorded(rec audit.Record) {
	g.metrics.auditEvents.Inc()
	if g.onAudit != nil {
		g.onAudit(rec)
	}
}

// sessionEvent turns a broker event into metrics and a live update for
// watchers of the session. Events of stored changes were audited with the
// change (see auditedSessions); the others are recorded here.
func (g *Gateway) sessionEvent(e session.Event) {
	s := e.Session
	if !e.Stored {
		g.record(context.Background(), sessionAuditEvent(e, s))
	}
	switch e.Type {
	case "session.created":
		g.metrics.sessionsCreated.Inc()
	case "session.approved":
		g.metrics.sessionsApproved.Inc()
	case "session.ended":
		g.metrics.sessionsEnded.WithLabelValues(string(s.EndReason)).Inc()
	}
	g.hub.publish(s)
}

// consentURL is the customer's link for a token.
func (g *Gateway) consentURL(token string) string {
	return g.public.String() + "/c/" + token
}
