package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"filippo.io/age"

	"supportgate/gateway"
	"supportgate/gateway/audit"
	"supportgate/gateway/bastion"
	"supportgate/gateway/identity"
	"supportgate/gateway/keys"
	"supportgate/gateway/sqlite"
	"supportgate/gateway/users"
	"supportgate/internal/gctune"
	"supportgate/session"
)

func init() {
	register(&command{name: "serve", summary: "run the gateway", run: runServe})
}

// Files in the data directory besides those of package keys.
const (
	dbFile             = "supportgate.db"
	complianceIdentity = "compliance-identity.txt"
	recordingsDir      = "recordings"
	serveLockFile      = "serve.lock" // held by the running serve; see lockDataDir
)

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func runServe(env *cliEnv, args []string) error {
	fs := newFlags(env, "serve", "[--config FILE] [--data DIR] [--http-addr HOST:PORT] [--ssh-addr HOST:PORT] [--wg-addr HOST:PORT] [--public-url URL] [--recipient AGE_RECIPIENT]...")
	configPath := fs.String("config", "", "JSON config `file`")
	dataDir := fs.String("data", "./data", "data `directory` (created on first run)")
	httpAddr := fs.String("http-addr", "", "HTTPS listen address (default :8443)")
	sshAddr := fs.String("ssh-addr", "", "SSH bastion listen address (default :2222)")
	wgAddr := fs.String("wg-addr", "", "WireGuard UDP listen address (default :51820)")
	publicURL := fs.String("public-url", "", "URL customers and agents reach the gateway at (default https://localhost:PORT)")
	var recipients stringList
	fs.Var(&recipients, "recipient", "age `recipient` that can read recordings (repeatable)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return &exitError{code: 2, msg: "serve takes no arguments"}
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	pick := func(flagVal, fileVal, def string) string {
		if flagVal != "" {
			return flagVal
		}
		if fileVal != "" {
			return fileVal
		}
		return def
	}
	httpListen := pick(*httpAddr, cfg.HTTPAddr, ":8443")
	sshListen := pick(*sshAddr, cfg.SSHAddr, ":2222")
	wgListen := pick(*wgAddr, cfg.WGAddr, "")
	if len(recipients) == 0 {
		recipients = cfg.Recipients
	}
	pol, err := cfg.Policy.policy()
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: logLevel(cfg.LogLevel)}))
	restoreGC, _ := gctune.Apply()
	defer restoreGC()

	// Before anything else touches the data directory or a port.
	lock, err := lockDataDir(*dataDir)
	if err != nil {
		return err
	}
	defer lock.Close()

	// Listen first so that port 0 resolves before the public URL and the
	// certificate are settled.
	ln, err := net.Listen("tcp", httpListen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", httpListen, err)
	}
	defer ln.Close()
	public := pick(*publicURL, cfg.PublicURL, "")
	if public == "" {
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		public = "https://localhost:" + port
	}
	pu, err := url.Parse(public)
	if err != nil || pu.Scheme != "https" || pu.Host == "" {
		return fmt.Errorf("--public-url %q must be https://HOST[:PORT]", public)
	}
	hosts := []string{pu.Hostname()}
	if h, _, err := net.SplitHostPort(httpListen); err == nil && h != "" {
		hosts = append(hosts, h)
	}

	mat, created, err := keys.LoadOrCreate(*dataDir, keys.Options{Hosts: hosts, Org: cfg.Org})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(*dataDir, recordingsDir), 0o700); err != nil {
		return err
	}
	ageRecipients, err := complianceRecipients(env, *dataDir, recipients)
	if err != nil {
		return err
	}
	store, err := sqlite.Open(filepath.Join(*dataDir, dbFile), sqlite.Options{})
	if err != nil {
		return err
	}
	defer store.Close()
	if from, to := store.Migrated(); from > 0 && from < to {
		fmt.Fprintf(env.stderr, "supportgate: upgraded the database schema from version %d to %d; older supportgate binaries refuse it now\n", from, to)
	}
	clock, clockBehind, err := steadyClock(store, logger)
	if err != nil {
		return err
	}

	// The WireGuard hub gets its socket from here: libraries don't listen.
	// An address that was asked for must work; the default may be taken
	// (another gateway on this host), which only disables device access.
	wgConn, wgEndpoint, err := listenWireGuard(env, wgListen, pu.Hostname())
	if err != nil {
		return err
	}
	if wgConn != nil {
		defer wgConn.Close()
	}

	// The SSH bastion's listener, opened here and handed over.
	sshLn, err := net.Listen("tcp", sshListen)
	if err != nil {
		return fmt.Errorf("listening on %s (--ssh-addr): %w", sshListen, err)
	}
	defer sshLn.Close()
	sshPort := sshLn.Addr().(*net.TCPAddr).Port

	detectCfg, err := cfg.Detect.detector(*dataDir, logger)
	if err != nil {
		return err
	}
	recCfg, err := cfg.recording()
	if err != nil {
		return err
	}
	rtcCfg, iceTCP, err := cfg.RTC.relay()
	if err != nil {
		return err
	}
	if iceTCP != nil {
		defer iceTCP.Close()
	}
	// The bastion is built after the gateway, which is told when a user's
	// access ends (lock, role or team change) to close their SSH
	// connections too, and when a login is signed out to close that
	// login's.
	var bastionRef atomic.Pointer[bastion.Server]
	dropSSH := func(name string) {
		if b := bastionRef.Load(); b != nil {
			b.DropUser(name)
		}
	}
	dropLoginSSH := func(login string) {
		if b := bastionRef.Load(); b != nil {
			b.DropLogin(login)
		}
	}
	g, err := gateway.New(gateway.Config{
		WireGuard: wgConn, WireGuardEndpoint: wgEndpoint,
		Store: store, Keys: mat, PublicURL: public, Org: cfg.Org, Policy: pol,
		TokenTTL: time.Duration(cfg.TokenTTL), Logger: logger, Recipients: ageRecipients,
		Detect: detectCfg, AutoLock: cfg.Detect.AutoLock, SSHPort: sshPort, RTC: rtcCfg,
		Recording: recCfg, OnUserDropped: dropSSH, OnLoginDropped: dropLoginSSH, Clock: clock,
		TrustedProxies: cfg.trusted,
	})
	if err != nil {
		return err
	}
	defer g.Close()
	if clockBehind != nil {
		g.Audit(context.Background(), *clockBehind)
	}
	bcfg := bastion.Config{
		HostKey: mat.SSHHostKey, UserCA: mat.SSHUserCA.PublicKey(),
		Sessions: g.Broker(), Users: store, Logins: store,
		Recording: g.Recording, // shared with the session's other transports
		Audit:     g.Audit, Logger: logger, Now: clock.Now,
		Presence: func(id string, p bastion.Participant, joined bool) {
			g.Presence(id, gateway.Participant(p), joined)
		},
	}
	if hub := g.WireGuard(); hub != nil {
		bcfg.Helpers = hub
	}
	bst, err := bastion.New(bcfg)
	if err != nil {
		return err
	}
	bastionRef.Store(bst)
	defer bst.Close()
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals()...)
	defer stop()
	if err := g.Start(ctx); err != nil {
		return err
	}
	if err := bootstrapAdmin(ctx, env, g, store, public); err != nil {
		return err
	}
	if created {
		fmt.Fprintf(env.stderr, "supportgate: initialised %s (CA certificate: %s)\n", *dataDir, filepath.Join(*dataDir, keys.CACertFile))
	}

	srv := &http.Server{
		Handler:           g.Handler(),
		TLSConfig:         mat.TLSConfig(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.ServeTLS(cfg.httpListener(ln), "", "") }()
	sshDone := make(chan struct{})
	go func() {
		defer close(sshDone)
		if err := bst.ServeSSH(ctx, cfg.sshListener(sshLn)); err != nil {
			errc <- err
		}
	}()
	fmt.Fprintf(env.stderr, "supportgate: listening on https://%s (public URL %s), SSH on %s\n", ln.Addr(), public, sshLn.Addr())

	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serving: %w", err)
		}
	case <-ctx.Done():
		fmt.Fprintln(env.stderr, "supportgate: shutting down")
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	bst.Close() // SSH connections and their recordings
	<-sshDone
	g.Close() // ends live channels and websockets first
	srv.Shutdown(shutdownCtx)
	return nil
}

// clockTolerance is how far the wall clock may be behind the newest stored
// record before serve calls it an error rather than the usual skew between
// a record written a moment ago and a clock NTP is slewing.
const clockTolerance = 5 * time.Second

// steadyClock returns the gateway's clock: the wall clock, but never
// earlier than the newest time the store holds nor going back while it
// runs (session.SteadyClock), so that a wall clock set back cannot stretch
// any stored deadline: time boxes, consent links, idle timeouts, bearer,
// enrollment and SSH certificate lifetimes. When the wall clock is behind
// that time by more than clockTolerance it logs an error and returns the
// audit event that says so, for serve to record once the log is open.
func steadyClock(store *sqlite.Store, logger *slog.Logger) (*session.SteadyClock, *audit.Event, error) {
	newest, err := store.HighWater(context.Background())
	if err != nil {
		return nil, nil, err
	}
	clock := session.NewSteadyClock(session.RealClock{}, newest)
	wall := clock.Wall()
	behind := newest.Sub(wall)
	if behind <= clockTolerance {
		return clock, nil, nil
	}
	ws, ns, bs := wall.UTC().Format(time.RFC3339Nano), newest.UTC().Format(time.RFC3339Nano), behind.Round(time.Second).String()
	logger.Error("wall clock is behind the newest stored record; the gateway's time runs on from that record, so that no stored deadline gains the difference. "+
		"If the wall clock is wrong, fix it: the times the gateway records stay ahead of it until it catches up. "+
		"If it is right, that record was written while the clock ran ahead, and the gateway's times stay that far ahead of the wall clock, less each restart's downtime, "+
		"until `supportgate admin clock reset --data DIR` (serve stopped; sessions ended, or --end-sessions to end them) accepts the wall clock",
		"wall", ws, "newest", ns, "behind", bs)
	return clock, &audit.Event{Type: "gateway.clock_behind", Actor: "system", Role: "system",
		Detail: map[string]string{"wall": ws, "newest": ns, "behind": bs}}, nil
}

// stopSignals are the signals that shut serve down cleanly, ending its
// recordings and auditing gateway.stopped. SIGHUP is one (closing serve's
// terminal sends it, as does a habitual `kill -HUP`; by default it would
// kill serve outright) unless serve started with it ignored, as under
// nohup: asking for it would undo that.
func stopSignals() []os.Signal {
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	return sigs
}

// listenWireGuard opens the hub's UDP socket on addr (default :51820) and
// names the endpoint helpers send to: the public host and the socket's port.
func listenWireGuard(env *cliEnv, addr, publicHost string) (*net.UDPConn, string, error) {
	explicit := addr != ""
	if !explicit {
		addr = ":51820"
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("--wg-addr %q: %w", addr, err)
	}
	c, err := net.ListenUDP("udp", ua)
	if err != nil {
		if explicit {
			return nil, "", fmt.Errorf("listening on %s/udp: %w", addr, err)
		}
		fmt.Fprintf(env.stderr, "supportgate: WARNING: WireGuard disabled (shell and tunnel helpers cannot enroll): %v; set --wg-addr\n", err)
		return nil, "", nil
	}
	endpoint := net.JoinHostPort(publicHost, fmt.Sprint(c.LocalAddr().(*net.UDPAddr).Port))
	fmt.Fprintf(env.stderr, "supportgate: WireGuard on %s/udp (helpers send to %s)\n", c.LocalAddr(), endpoint)
	return c, endpoint, nil
}

func logLevel(s string) slog.Level {
	var l slog.Level
	if l.UnmarshalText([]byte(s)) != nil {
		return slog.LevelInfo
	}
	return l
}

// complianceRecipients parses the configured age recipients. With none, the
// first run writes a compliance identity into the data directory and says
// loudly that it must be moved off the host.
func complianceRecipients(env *cliEnv, dir string, given []string) ([]age.Recipient, error) {
	var out []age.Recipient
	for _, r := range given {
		rec, err := age.ParseX25519Recipient(strings.TrimSpace(r))
		if err != nil {
			return nil, fmt.Errorf("--recipient %q: %w", r, err)
		}
		out = append(out, rec)
	}
	if len(out) > 0 {
		return out, nil
	}
	path := filepath.Join(dir, complianceIdentity)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		ids, err := age.ParseIdentities(strings.NewReader(string(b)))
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		for _, id := range ids {
			if x, ok := id.(*age.X25519Identity); ok {
				out = append(out, x.Recipient())
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("%s holds no X25519 identity", path)
		}
	case errors.Is(err, fs.ErrNotExist):
		id, err := age.GenerateX25519Identity()
		if err != nil {
			return nil, err
		}
		text := fmt.Sprintf("# supportgate compliance identity: reads every recording.\n# public key: %s\n%s\n", id.Recipient(), id)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			return nil, err
		}
		out = append(out, id.Recipient())
		fmt.Fprintf(env.stderr, "supportgate: WARNING: no --recipient configured; wrote a compliance identity to %s.\n"+
			"supportgate: WARNING: MOVE IT OFF THIS HOST to your compliance team and configure its public key (%s) with --recipient.\n", path, id.Recipient())
	default:
		return nil, err
	}
	if _, err := os.Stat(path); err == nil {
		fmt.Fprintf(env.stderr, "supportgate: WARNING: %s is still on this host; anyone who can read it can read every recording\n", path)
	}
	return out, nil
}

// bootstrapAdmin creates the first admin on an empty database, or renews
// the link while that admin has not enrolled (whatever other users were
// added meanwhile), and prints the one-time enrollment link. Nothing else can create a first user: there is no setup
// endpoint.
func bootstrapAdmin(ctx context.Context, env *cliEnv, g *gateway.Gateway, store users.Store, public string) error {
	n, err := store.CountUsers(ctx)
	if err != nil {
		return err
	}
	acc := g.Accounts()
	var token string
	switch n {
	case 0:
		a, err := acc.Create(ctx, gateway.NewUser{Name: "admin", DisplayName: "Administrator", Role: identity.RoleAdmin})
		if err != nil {
			return err
		}
		token = a.EnrollToken
	default:
		// The first admin has not enrolled yet: a new link, the old one
		// void. Other users added meanwhile (the README's next step) do
		// not change that.
		u, err := store.GetUser(ctx, "admin")
		if err != nil || u.Enrolled || u.Role != string(identity.RoleAdmin) {
			return nil
		}
		if token, err = acc.EnrollLink(ctx, "admin"); err != nil {
			return err
		}
	}
	fmt.Fprintf(env.stderr, "supportgate: one-time admin enrollment link (valid %v): %s/enroll/%s\n", gateway.EnrollTTL, strings.TrimRight(public, "/"), token)
	return nil
}
