package assist

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"

	"supportgate/internal/wgbind"
	"supportgate/internal/wgstack"
)

// EndpointConfig configures the helper's side of the tunnel.
type EndpointConfig struct {
	Enrollment *Enrollment  // required: the gateway's answer to Enroll
	PrivateKey [32]byte     // required: the WireGuard key whose public half was enrolled
	HostKey    ssh.Signer   // required: the SSH host key that was enrolled
	Conn       *net.UDPConn // required: the socket the tunnel uses; the caller closes it after Close
	Shell      string       // the customer's shell (default /bin/sh)
	Env        []string     // environment of shells and commands (default: none but TERM, SHELL, HOME, USER, PATH from Shell's caller)
	Dir        string       // working directory of shells (default the process's)
	MTU        int          // tunnel MTU; default: from the path to the gateway, as wg-quick does (see tunnelMTU)
	Logger     *slog.Logger // nil discards
	// Consented is the scopes the customer agreed to, as they were shown
	// to the customer: the endpoint serves only what both these and the
	// enrollment grant (see AllowedScopes), so a gateway cannot enroll
	// for more than was asked. Nil serves the enrollment's scopes, for
	// callers that did not ask anyone (tests, benchmarks).
	Consented []string
	// DialLocal reaches a consented port on the customer's machine
	// (default: TCP to 127.0.0.1:port).
	DialLocal func(ctx context.Context, port uint16) (net.Conn, error)
}

// Endpoint is the running tunnel with its SSH endpoint and forwards.
type Endpoint struct {
	cfg    EndpointConfig
	log    *slog.Logger
	dev    *device.Device
	tdev   tun.Device
	tnet   *wgstack.Net
	addr   netip.Addr
	gw     netip.Addr
	gwKey  ssh.PublicKey
	ssh    *ssh.ServerConfig
	gwWG   string   // the gateway's WireGuard key, hex, as UAPI names the peer
	scopes []string // what it serves
	peer   string   // the UAPI lines that configure the gateway as the peer

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the endpoint started
	jobs   *jobs          // the processes it started

	mu      sync.Mutex // guards conns, lns, shells
	conns   map[net.Conn]struct{}
	lns     []net.Listener
	shells  int
	closing sync.Once
}

// Status is what the helper shows the customer.
type Status struct {
	SSHConnections int // SSH connections from the gateway now
	Shells         int // shells and commands running now
	Forwards       int // forwarded TCP connections now
}

// scopeShell is the enrollment scope that consents to shells and commands.
const scopeShell = "shell"

// StartEndpoint brings the tunnel up and serves, on the tunnel address,
// SSH if a shell was consented and the consented tunnel ports, forwarded
// to the customer's machine.
func StartEndpoint(cfg EndpointConfig) (*Endpoint, error) {
	en := cfg.Enrollment
	switch {
	case en == nil:
		return nil, errors.New("assist: EndpointConfig.Enrollment is required")
	case cfg.HostKey == nil:
		return nil, errors.New("assist: EndpointConfig.HostKey is required")
	case cfg.Conn == nil:
		return nil, errors.New("assist: EndpointConfig.Conn is required")
	}
	if cfg.Shell == "" {
		cfg.Shell = "/bin/sh"
	}
	if cfg.DialLocal == nil {
		cfg.DialLocal = func(ctx context.Context, port uint16) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), port).String())
		}
	}
	pfx, err := netip.ParsePrefix(en.Address)
	if err != nil {
		return nil, fmt.Errorf("assist: enrollment address %q: %w", en.Address, err)
	}
	gw, err := netip.ParseAddr(en.GatewayAddress)
	if err != nil {
		return nil, fmt.Errorf("assist: gateway address %q: %w", en.GatewayAddress, err)
	}
	gwWG, err := base64.StdEncoding.DecodeString(en.GatewayKey)
	if err != nil || len(gwWG) != 32 {
		return nil, errors.New("assist: invalid gateway WireGuard key")
	}
	gwSSH, _, _, _, err := ssh.ParseAuthorizedKey([]byte(en.GatewaySSHKey))
	if err != nil {
		return nil, fmt.Errorf("assist: gateway SSH key: %w", err)
	}
	endpoint, err := resolveEndpoint(en.Endpoint, cfg.Conn)
	if err != nil {
		return nil, err
	}
	if cfg.MTU <= 0 {
		cfg.MTU = tunnelMTU(endpoint)
	}
	e := &Endpoint{cfg: cfg, log: cfg.Logger, addr: pfx.Addr(), gw: gw, gwKey: gwSSH, conns: map[net.Conn]struct{}{}, jobs: newJobs()}
	becomeSubreaper()
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.tdev, e.tnet, err = wgstack.New([]netip.Addr{e.addr}, cfg.MTU)
	if err != nil {
		return nil, fmt.Errorf("assist: netstack: %w", err)
	}
	e.dev = device.NewDevice(e.tdev, wgbind.New(cfg.Conn), wgbind.Logger(e.log, "assist"))
	keepalive := en.Keepalive
	if keepalive <= 0 {
		keepalive = 25
	}
	e.gwWG = hex.EncodeToString(gwWG)
	e.peer = fmt.Sprintf("public_key=%s\nendpoint=%s\nallowed_ip=%s/32\npersistent_keepalive_interval=%d\n",
		e.gwWG, endpoint, gw, keepalive)
	if err := e.dev.IpcSet("private_key=" + hex.EncodeToString(cfg.PrivateKey[:]) + "\n" + e.peer); err != nil {
		e.dev.Close()
		return nil, fmt.Errorf("assist: configuring WireGuard: %w", err)
	}
	if err := e.dev.Up(); err != nil {
		e.dev.Close()
		return nil, fmt.Errorf("assist: WireGuard up: %w", err)
	}

	e.ssh = &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if string(key.Marshal()) == string(e.gwKey.Marshal()) {
				return &ssh.Permissions{}, nil
			}
			return nil, errors.New("only the gateway may connect")
		},
		ServerVersion: "SSH-2.0-supportgate-assist",
	}
	e.ssh.AddHostKey(cfg.HostKey)

	port := en.SSHPort
	if port == 0 {
		port = 22
	}
	// The SSH endpoint runs only if the customer consented to a shell: a
	// tunnel alone gives the gateway its ports and nothing else.
	e.scopes = en.Scopes
	if cfg.Consented != nil {
		e.scopes, _ = AllowedScopes(en.Scopes, cfg.Consented)
	}
	shell := slices.Contains(e.scopes, scopeShell)
	if shell {
		ln, err := e.tnet.ListenTCPAddrPort(netip.AddrPortFrom(e.addr, port))
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("assist: SSH listener: %w", err)
		}
		e.serve(ln, e.serveSSH)
	}
	for _, p := range tunnelPorts(e.scopes) {
		if shell && p == port {
			e.log.Warn("tunnel port is the SSH endpoint's; not forwarded", "port", p)
			continue
		}
		ln, err := e.tnet.ListenTCPAddrPort(netip.AddrPortFrom(e.addr, p))
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("assist: forward listener on port %d: %w", p, err)
		}
		e.serve(ln, func(c net.Conn) { e.forward(c, p) })
	}
	// Send the first handshake now, so the gateway learns our endpoint
	// before it needs to dial us.
	e.dev.SendKeepalivesToPeersWithCurrentKeypair()
	e.kick()
	return e, nil
}

// Rejoin drops the tunnel's session keys and handshakes with the gateway
// again at once. After the gateway restarted, the keys this side holds are
// gone on the other: without Rejoin the tunnel would stay silent until
// WireGuard's own timers renew them (up to two minutes). Connections
// inside the tunnel are kept; packets sent meanwhile are retransmitted by
// TCP.
func (e *Endpoint) Rejoin() error {
	if e.ctx.Err() != nil {
		return errors.New("assist: endpoint closed")
	}
	if err := e.dev.IpcSet("public_key=" + e.gwWG + "\nremove=true\n" + e.peer); err != nil {
		return fmt.Errorf("assist: renewing the tunnel: %w", err)
	}
	e.kick()
	return nil
}

// kick makes WireGuard handshake at once by sending a packet to the gateway.
func (e *Endpoint) kick() {
	c, err := e.tnet.DialUDPAddrPort(netip.AddrPortFrom(e.addr, 0), netip.AddrPortFrom(e.gw, 9))
	if err == nil {
		c.Write([]byte{0})
		c.Close()
	}
}

// Scopes is what the endpoint serves: the enrollment's scopes that the
// customer consented to.
func (e *Endpoint) Scopes() []string { return slices.Clone(e.scopes) }

// AllowedScopes splits the scopes of an enrollment into those the
// customer consented to and those refused. A tunnel scope is split by
// port: "tunnel:80,22" with "tunnel:80" consented allows "tunnel:80" and
// refuses "tunnel:22".
func AllowedScopes(enrolled, consented []string) (allowed, refused []string) {
	ports := map[uint16]bool{}
	for _, p := range tunnelPorts(consented) {
		ports[p] = true
	}
	for _, s := range enrolled {
		if !strings.HasPrefix(s, "tunnel:") {
			if slices.Contains(consented, s) {
				allowed = append(allowed, s)
			} else {
				refused = append(refused, s)
			}
			continue
		}
		var yes, no []string
		for _, p := range strings.Split(strings.TrimPrefix(s, "tunnel:"), ",") {
			var n uint16
			if _, err := fmt.Sscanf(p, "%d", &n); err == nil && ports[n] && fmt.Sprint(n) == p {
				yes = append(yes, p)
			} else {
				no = append(no, p)
			}
		}
		if yes != nil {
			allowed = append(allowed, "tunnel:"+strings.Join(yes, ","))
		}
		if no != nil {
			refused = append(refused, "tunnel:"+strings.Join(no, ","))
		}
	}
	return allowed, refused
}

// MTU is the tunnel's MTU.
func (e *Endpoint) MTU() int { return e.cfg.MTU }

// Address is the helper's tunnel address.
func (e *Endpoint) Address() netip.Addr { return e.addr }

// Status counts live connections.
func (e *Endpoint) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := Status{Shells: e.shells}
	for c := range e.conns {
		if _, ok := c.(*sshConnMark); ok {
			st.SSHConnections++
		} else {
			st.Forwards++
		}
	}
	return st
}

// sshConnMark marks a tracked connection as an SSH connection.
type sshConnMark struct{ net.Conn }

// serve accepts on ln until Close, handing each connection that comes
// from the gateway's tunnel address to handle.
func (e *Endpoint) serve(ln net.Listener, handle func(net.Conn)) {
	e.mu.Lock()
	e.lns = append(e.lns, ln)
	e.mu.Unlock()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !e.fromGateway(c) {
				c.Close()
				continue
			}
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				handle(c)
			}()
		}
	}()
}

func (e *Endpoint) fromGateway(c net.Conn) bool {
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	return err == nil && ap.Addr() == e.gw
}

// track registers c so that Close closes it; it reports false when the
// endpoint is already closing.
func (e *Endpoint) track(c net.Conn, key net.Conn) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ctx.Err() != nil {
		c.Close()
		return false
	}
	e.conns[key] = struct{}{}
	return true
}

func (e *Endpoint) untrack(key net.Conn) {
	e.mu.Lock()
	delete(e.conns, key)
	e.mu.Unlock()
}

// forward copies a tunnel connection to the consented local port.
func (e *Endpoint) forward(c net.Conn, port uint16) {
	if !e.track(c, c) {
		return
	}
	defer e.untrack(c)
	defer c.Close()
	lc, err := e.cfg.DialLocal(e.ctx, port)
	if err != nil {
		e.log.Info("forward: local port unreachable", "port", port, "err", err)
		return
	}
	defer lc.Close()
	stop := context.AfterFunc(e.ctx, func() { c.Close(); lc.Close() })
	defer stop()
	done := make(chan struct{})
	go func() {
		io.Copy(lc, c)
		closeWrite(lc)
		close(done)
	}()
	io.Copy(c, lc)
	closeWrite(c)
	<-done
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// Close stops the tunnel and ends every shell, command and forward, and
// kills every process the shells and commands started (see jobs). It is
// idempotent and returns when all of them have stopped, or after
// closeWait at most: it must not keep the tunnel up, nor the helper from
// revoking.
func (e *Endpoint) Close() error {
	e.closing.Do(func() {
		e.mu.Lock()
		e.cancel()
		for _, ln := range e.lns {
			ln.Close()
		}
		for c := range e.conns {
			c.Close()
		}
		e.mu.Unlock()
		// No shell starts after the cancel (start checks it under the
		// jobs lock), so this sweep sees every one.
		if left := e.jobs.sweep(nil); left > 0 {
			e.log.Warn("close: processes could not be killed", "left", left)
		}
		stopped := make(chan struct{})
		go func() { e.wg.Wait(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(closeWait):
			e.log.Warn("close: shells or forwards still running; closing the tunnel anyway", "after", closeWait)
		}
		e.dev.Close()
	})
	return nil
}

// closeWait bounds how long Close waits for its goroutines after killing.
const closeWait = 10 * time.Second

// Done is closed when the endpoint starts closing.
func (e *Endpoint) Done() <-chan struct{} { return e.ctx.Done() }

func tunnelPorts(scopes []string) []uint16 {
	var out []uint16
	for _, s := range scopes {
		rest, ok := strings.CutPrefix(s, "tunnel:")
		if !ok {
			continue
		}
		for _, p := range strings.Split(rest, ",") {
			var n uint16
			if _, err := fmt.Sscanf(p, "%d", &n); err == nil && n > 0 {
				out = append(out, n)
			}
		}
	}
	return out
}

// resolveEndpoint turns the gateway's host:port into an address literal of
// the family the socket can reach.
func resolveEndpoint(hostport string, c *net.UDPConn) (string, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", fmt.Errorf("assist: gateway endpoint %q: %w", hostport, err)
	}
	ips, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", host)
	if err != nil || len(ips) == 0 {
		return "", fmt.Errorf("assist: resolving gateway endpoint %q: %v", host, err)
	}
	want4 := true
	if la, ok := c.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() == nil {
		want4 = false // an IPv6 socket; it reaches IPv4 too through mapped addresses
	}
	pick := ips[0].Unmap()
	for _, ip := range ips {
		if ip.Unmap().Is4() == want4 {
			pick = ip.Unmap()
			break
		}
	}
	return net.JoinHostPort(pick.String(), port), nil
}
