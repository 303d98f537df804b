// Package wghub is the gateway's WireGuard hub: one userspace WireGuard
// device (wireguard-go on a gVisor netstack, no root, no TUN device) that
// carries the tunnels of supportgate-assist helpers. A helper becomes a
// peer when its session, approved with the shell or tunnel scope, enrolls,
// and stops being one the moment the session's context ends. The hub
// never listens by itself: it is handed a UDP socket.
//
// Traffic only ever flows from the gateway to a helper through Dial, which
// asks the session broker first and reaches only that session's peer, only
// on the helper's SSH port (shell scope) or a consented port (tunnel scope).
package wghub

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"

	"supportgate/internal/wgbind"
	"supportgate/internal/wgstack"
	"supportgate/session"
)

// Defaults of Config.
var (
	// DefaultPrefix is the address plan: a slice of the CGNAT range
	// (RFC 6598) unlikely to collide with customer networks. The gateway
	// takes the first host address, helpers the rest.
	DefaultPrefix = netip.MustParsePrefix("100.96.0.0/12")
)

const (
	// DefaultMTU is the hub's tunnel MTU: the largest, so that the hub
	// takes packets of any size a peer sends. It never sends a peer TCP
	// segments larger than the MSS the peer announced from its own MTU
	// (1420 for a usual WireGuard peer), and only TCP crosses the tunnel.
	DefaultMTU = wgstack.MaxMTU
	// SSHPort is where a helper serves SSH inside its tunnel.
	SSHPort = 22
	// MaxPeers bounds the enrolled helpers of one hub.
	MaxPeers = 65536
)

// Sessions is what the hub needs of the session broker.
type Sessions interface {
	// Context returns the context of an active session, cancelled when it ends.
	Context(id string) (context.Context, error)
	// Authorize checks that need is granted in an active session and
	// returns the session's context.
	Authorize(ctx context.Context, id string, need session.Need) (context.Context, *session.Session, error)
	// Touch records activity, pushing the idle deadline.
	Touch(id string)
}

var _ Sessions = (*session.Broker)(nil)

// Config configures a Hub.
type Config struct {
	PrivateKey [32]byte      // required: the gateway's WireGuard key (Curve25519, clamped)
	Conn       *net.UDPConn  // required: the socket WireGuard packets arrive on; the caller closes it after Close
	Endpoint   string        // required: host:port helpers send to, told at enrollment
	Sessions   Sessions      // required
	Prefix     netip.Prefix  // address plan (default DefaultPrefix), IPv4, at most /24
	MTU        int           // tunnel MTU (default DefaultMTU)
	Logger     *slog.Logger  // nil discards
	TouchEvery time.Duration // how often traffic on a dialed connection counts as activity (default 1s)
}

// Errors callers branch on.
var (
	ErrNotEnrolled      = errors.New("wghub: session has no enrolled helper")
	ErrAlreadyEnrolled  = errors.New("wghub: session already enrolled a helper")
	ErrKeyInUse         = errors.New("wghub: WireGuard key already belongs to a live peer")
	ErrFull             = errors.New("wghub: no free tunnel address")
	ErrClosed           = errors.New("wghub: hub is closed")
	errUnsupportedScope = fmt.Errorf("wghub: dial needs the shell or tunnel scope: %w", session.ErrScopeNotAllowed)
)

// Hub is the gateway's WireGuard device and its peers.
type Hub struct {
	cfg     Config
	log     *slog.Logger
	dev     *device.Device
	tdev    tun.Device
	net     *wgstack.Net
	gwAddr  netip.Addr
	gwPub   [32]byte
	touchIv time.Duration

	mu        sync.Mutex       // guards peers, byKey, used, next, closed
	peers     map[string]*peer // by session ID
	byKey     map[[32]byte]*peer
	used      map[netip.Addr]string // live addresses -> session ID
	next      netip.Addr            // where the address search starts
	closed    bool
	removals  sync.WaitGroup // removal callbacks in flight
	closeOnce sync.Once
}

// peer is one enrolled helper.
type peer struct {
	session string
	key     [32]byte
	addr    netip.Addr
	hostKey ssh.PublicKey
	ctx     context.Context
	stop    func() bool // unregisters the removal callback
}

// Enrollment is what a helper needs to bring its tunnel up.
type Enrollment struct {
	GatewayKey     [32]byte   // the gateway's WireGuard public key
	Endpoint       string     // host:port to send WireGuard packets to
	Address        netip.Addr // the helper's tunnel address (a /32)
	GatewayAddress netip.Addr // the gateway's tunnel address, the only source the helper should accept
	SSHPort        uint16     // where the helper must serve SSH on Address
}

// New starts the WireGuard device on cfg.Conn.
func New(cfg Config) (*Hub, error) {
	switch {
	case cfg.Conn == nil:
		return nil, errors.New("wghub: Config.Conn is required")
	case cfg.Sessions == nil:
		return nil, errors.New("wghub: Config.Sessions is required")
	case cfg.Endpoint == "":
		return nil, errors.New("wghub: Config.Endpoint is required")
	case cfg.PrivateKey == [32]byte{}:
		return nil, errors.New("wghub: Config.PrivateKey is required")
	}
	if !cfg.Prefix.IsValid() {
		cfg.Prefix = DefaultPrefix
	}
	cfg.Prefix = cfg.Prefix.Masked()
	if !cfg.Prefix.Addr().Is4() || cfg.Prefix.Bits() > 24 {
		return nil, fmt.Errorf("wghub: address plan %s must be IPv4 and at least a /24", cfg.Prefix)
	}
	if cfg.MTU <= 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.TouchEvery <= 0 {
		cfg.TouchEvery = time.Second
	}
	h := &Hub{
		cfg: cfg, log: cfg.Logger, touchIv: cfg.TouchEvery,
		peers: map[string]*peer{}, byKey: map[[32]byte]*peer{}, used: map[netip.Addr]string{},
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.gwAddr = cfg.Prefix.Addr().Next()
	h.next = h.gwAddr.Next()
	h.gwPub = PublicKey(cfg.PrivateKey)

	var err error
	h.tdev, h.net, err = wgstack.New([]netip.Addr{h.gwAddr}, cfg.MTU)
	if err != nil {
		return nil, fmt.Errorf("wghub: netstack: %w", err)
	}
	h.dev = device.NewDevice(h.tdev, wgbind.New(cfg.Conn), wgbind.Logger(h.log, "wghub"))
	if err := h.dev.IpcSet("private_key=" + hex.EncodeToString(cfg.PrivateKey[:]) + "\n"); err != nil {
		h.dev.Close()
		return nil, fmt.Errorf("wghub: configuring device: %w", err)
	}
	if err := h.dev.Up(); err != nil {
		h.dev.Close()
		return nil, fmt.Errorf("wghub: device up: %w", err)
	}
	return h, nil
}

// PublicKey is the hub's WireGuard public key.
func (h *Hub) PublicKey() [32]byte { return h.gwPub }

// Address is the gateway's own tunnel address.
func (h *Hub) Address() netip.Addr { return h.gwAddr }

// Enroll makes the helper with WireGuard key wgKey and SSH host key
// hostKey the peer of an active session. Each session enrolls once: a
// second Enroll fails with ErrAlreadyEnrolled, even with another key. The
// peer is removed the moment the session's context ends.
func (h *Hub) Enroll(sessionID string, wgKey [32]byte, hostKey ssh.PublicKey) (*Enrollment, error) {
	return h.enroll(sessionID, wgKey, hostKey, netip.Addr{})
}

// Restore takes back a helper that enrolled before the gateway restarted,
// at the address it was given then, so that its tunnel resumes without
// anything asked of the customer: the helper keeps its keys and address,
// and WireGuard handshakes again on its next packet. The session must be
// active and the address still free and in the plan.
func (h *Hub) Restore(sessionID string, wgKey [32]byte, hostKey ssh.PublicKey, addr netip.Addr) error {
	if !addr.IsValid() {
		return errors.New("wghub: restoring a helper needs its address")
	}
	_, err := h.enroll(sessionID, wgKey, hostKey, addr)
	return err
}

// Remove drops the session's helper at once, if it has one.
func (h *Hub) Remove(sessionID string) {
	h.mu.Lock()
	p := h.peers[sessionID]
	h.mu.Unlock()
	if p != nil && p.stop() {
		h.remove(p)
		h.removals.Done()
	}
}

// enroll adds the session's peer at addr, or at a free address when addr
// is the zero Addr.
func (h *Hub) enroll(sessionID string, wgKey [32]byte, hostKey ssh.PublicKey, addr netip.Addr) (*Enrollment, error) {
	if wgKey == ([32]byte{}) || hostKey == nil {
		return nil, errors.New("wghub: WireGuard key and SSH host key are required")
	}
	ctx, err := h.cfg.Sessions.Context(sessionID)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	switch {
	case h.closed:
		h.mu.Unlock()
		return nil, ErrClosed
	case h.peers[sessionID] != nil:
		h.mu.Unlock()
		return nil, ErrAlreadyEnrolled
	case h.byKey[wgKey] != nil || wgKey == h.gwPub:
		h.mu.Unlock()
		return nil, ErrKeyInUse
	case len(h.peers) >= MaxPeers:
		h.mu.Unlock()
		return nil, ErrFull
	}
	if addr.IsValid() {
		b := addr.As4()
		if !addr.Is4() || !h.cfg.Prefix.Contains(addr) || addr == h.cfg.Prefix.Addr() || addr == h.gwAddr || b[3] == 0 || b[3] == 255 {
			h.mu.Unlock()
			return nil, fmt.Errorf("wghub: address %s is not in the plan %s", addr, h.cfg.Prefix)
		}
		if _, live := h.used[addr]; live {
			h.mu.Unlock()
			return nil, fmt.Errorf("wghub: address %s is in use", addr)
		}
	} else {
		var ok bool
		if addr, ok = h.allocLocked(); !ok {
			h.mu.Unlock()
			return nil, ErrFull
		}
	}
	p := &peer{session: sessionID, key: wgKey, addr: addr, hostKey: hostKey, ctx: ctx}
	h.peers[sessionID] = p
	h.byKey[wgKey] = p
	h.used[addr] = sessionID
	// Configure the device under the lock so that a removal cannot run
	// between the bookkeeping and the device.
	err = h.dev.IpcSet(fmt.Sprintf("public_key=%s\nreplace_allowed_ips=true\nallowed_ip=%s/32\n",
		hex.EncodeToString(wgKey[:]), addr))
	if err != nil {
		h.forgetLocked(p)
		h.mu.Unlock()
		return nil, fmt.Errorf("wghub: adding peer: %w", err)
	}
	h.removals.Add(1)
	p.stop = context.AfterFunc(ctx, func() {
		defer h.removals.Done()
		h.remove(p)
	})
	h.mu.Unlock()
	h.log.Info("helper enrolled", "session", sessionID, "address", addr)
	return &Enrollment{GatewayKey: h.gwPub, Endpoint: h.cfg.Endpoint, Address: addr,
		GatewayAddress: h.gwAddr, SSHPort: SSHPort}, nil
}

// allocLocked finds a free address, walking the plan from where the last
// search ended so that a freed address is reused as late as possible.
func (h *Hub) allocLocked() (netip.Addr, bool) {
	pfx := h.cfg.Prefix
	a := h.next
	for range 1 << (32 - pfx.Bits()) {
		if !pfx.Contains(a) {
			a = pfx.Addr()
		}
		cand := a
		a = a.Next()
		b := cand.As4()
		if cand == pfx.Addr() || cand == h.gwAddr || b[3] == 0 || b[3] == 255 {
			continue // network address, ours, and .0/.255 that some stacks mistreat
		}
		if _, live := h.used[cand]; live {
			continue
		}
		h.next = a
		return cand, true
	}
	return netip.Addr{}, false
}

func (h *Hub) forgetLocked(p *peer) {
	if h.peers[p.session] == p {
		delete(h.peers, p.session)
	}
	if h.byKey[p.key] == p {
		delete(h.byKey, p.key)
	}
	if h.used[p.addr] == p.session {
		delete(h.used, p.addr)
	}
}

// remove takes the peer out of the device (which drops its keys and
// handshake state at once) and frees its address.
func (h *Hub) remove(p *peer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.peers[p.session] != p {
		return
	}
	if err := h.dev.IpcSet("public_key=" + hex.EncodeToString(p.key[:]) + "\nremove=true\n"); err != nil {
		h.log.Error("removing peer", "session", p.session, "err", err)
	}
	h.forgetLocked(p)
	h.log.Info("helper removed", "session", p.session, "address", p.addr)
}

// Enrolled reports whether the session has a live peer.
func (h *Hub) Enrolled(sessionID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.peers[sessionID] != nil
}

// Peers is the number of live peers.
func (h *Hub) Peers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.peers)
}

// HostKey is the SSH host key the session's helper enrolled, for the
// bastion to verify the helper with.
func (h *Hub) HostKey(sessionID string) (ssh.PublicKey, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.peers[sessionID]
	if p == nil {
		return nil, ErrNotEnrolled
	}
	return p.hostKey, nil
}

// DevicePeerCount is the number of peers the WireGuard device itself
// holds, which must always equal Peers; tests check it.
func (h *Hub) DevicePeerCount() int {
	s, err := h.dev.IpcGet()
	if err != nil {
		return -1
	}
	return strings.Count(s, "public_key=")
}

// Dial opens a TCP connection through the tunnel to the helper of a
// session, after the broker has authorised need (its Agent must be the
// authenticated agent): Kind Shell reaches the helper's SSH endpoint,
// Kind Tunnel reaches need.Port, which must be consented. Nothing else is
// dialable. The connection is closed when the session ends.
func (h *Hub) Dial(ctx context.Context, sessionID string, need session.Need) (net.Conn, error) {
	var port uint16
	switch need.Kind {
	case session.Shell:
		port = SSHPort
		need.Port = 0
	case session.Tunnel:
		port = need.Port
		if port == 0 {
			return nil, fmt.Errorf("wghub: dial: %w", session.ErrScopeNotAllowed)
		}
	default:
		return nil, errUnsupportedScope
	}
	sctx, _, err := h.cfg.Sessions.Authorize(ctx, sessionID, need)
	if err != nil {
		return nil, fmt.Errorf("wghub: dial: %w", err)
	}
	h.mu.Lock()
	p := h.peers[sessionID]
	h.mu.Unlock()
	if p == nil {
		return nil, ErrNotEnrolled
	}
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopDial := context.AfterFunc(sctx, cancel)
	defer stopDial()
	c, err := h.net.DialContextTCPAddrPort(dctx, netip.AddrPortFrom(p.addr, port))
	if err != nil {
		if sctx.Err() != nil {
			return nil, fmt.Errorf("wghub: dial: %w", session.ErrEnded)
		}
		return nil, fmt.Errorf("wghub: dial %s port %d: %w", sessionID, port, err)
	}
	tc := &tunnelConn{Conn: c, h: h, session: sessionID}
	tc.stop = context.AfterFunc(sctx, func() { c.Close() })
	return tc, nil
}

// tunnelConn is a dialed connection: closed when its session ends, and
// counted as session activity while bytes flow.
type tunnelConn struct {
	net.Conn
	h         *Hub
	session   string
	stop      func() bool
	mu        sync.Mutex // guards lastTouch
	lastTouch time.Time
}

func (c *tunnelConn) touch() {
	now := time.Now()
	c.mu.Lock()
	due := now.Sub(c.lastTouch) >= c.h.touchIv
	if due {
		c.lastTouch = now
	}
	c.mu.Unlock()
	if due {
		c.h.cfg.Sessions.Touch(c.session)
	}
}

func (c *tunnelConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.touch()
	}
	return n, err
}

func (c *tunnelConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.touch()
	}
	return n, err
}

// CloseWrite half-closes the connection, as *net.TCPConn does.
func (c *tunnelConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

func (c *tunnelConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// Close removes every peer and stops the device. It is idempotent. The
// socket stays open: it belongs to whoever passed it in.
func (h *Hub) Close() error {
	h.closeOnce.Do(func() {
		h.mu.Lock()
		h.closed = true
		ps := make([]*peer, 0, len(h.peers))
		for _, p := range h.peers {
			ps = append(ps, p)
		}
		h.mu.Unlock()
		for _, p := range ps {
			if p.stop() {
				h.removals.Done()
			}
			h.remove(p)
		}
		h.removals.Wait()
		h.dev.Close()
	})
	return nil
}
