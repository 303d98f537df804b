package proxies

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The PROXY protocol (haproxy.org/download/2.9/doc/proxy-protocol.txt)
// lets a TCP load balancer that passes TLS through untouched tell the
// gateway whom a connection is from: it sends one header, text (v1) or
// binary (v2), before the client's first byte.

// Bounds on a PROXY protocol header: a v1 line is at most 107 bytes with
// its CRLF (the specification's own limit); a v2 header's address block
// and TLVs at most MaxV2Bytes (load balancers add a few TLVs, such as an
// endpoint's name; the gateway reads none of them).
const (
	maxV1Bytes = 107
	MaxV2Bytes = 1024
)

// DefaultHeaderTimeout is how long a connection from a load balancer may
// take to send its PROXY protocol header when ProtocolListener is given
// no timeout.
const DefaultHeaderTimeout = 5 * time.Second

// errNoHeader is the reason a trusted peer's connection is refused when it
// does not begin with a PROXY protocol header.
var errNoHeader = errors.New("proxies: no PROXY protocol header from a load balancer that must send one")

// v2Signature begins every v2 header.
var v2Signature = []byte("\r\n\r\n\x00\r\nQUIT\n")

// ProtocolListener wraps ln so that a connection from a load balancer in
// lbs must begin with a PROXY protocol header, v1 or v2, and reports the
// client the header names as its RemoteAddr; one that does not send a
// valid header within timeout (DefaultHeaderTimeout if 0) is closed
// before anything reads from it. A header with the LOCAL command (v2) or
// UNKNOWN protocol (v1), as load balancers send for their health checks,
// leaves the load balancer as the peer. Connections from other peers are
// passed through untouched and send no header.
//
// Accept does not wait for the header: the connection's first Read or
// RemoteAddr does, in the goroutine that serves it, so that a load
// balancer's slow connection holds up no other.
func ProtocolListener(ln net.Listener, lbs *Trusted, timeout time.Duration) net.Listener {
	if timeout <= 0 {
		timeout = DefaultHeaderTimeout
	}
	return &protocolListener{Listener: ln, lbs: lbs, timeout: timeout}
}

type protocolListener struct {
	net.Listener
	lbs     *Trusted
	timeout time.Duration
}

func (l *protocolListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	peer, perr := netip.ParseAddrPort(c.RemoteAddr().String())
	if perr != nil || !l.lbs.Contains(peer.Addr()) {
		return c, nil
	}
	return &protocolConn{Conn: c, timeout: l.timeout}, nil
}

// protocolConn is a connection from a load balancer, read through the
// PROXY protocol header on first use.
type protocolConn struct {
	net.Conn
	timeout time.Duration

	once   sync.Once
	r      *bufio.Reader // the connection after the header
	remote net.Addr      // the client the header names, or the peer
	err    error         // why the connection was refused
}

// header reads the PROXY protocol header once, closing the connection if
// it is missing or malformed.
func (c *protocolConn) header() {
	c.once.Do(func() {
		c.remote = c.Conn.RemoteAddr()
		c.r = bufio.NewReaderSize(c.Conn, 256)
		c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
		src, err := readHeader(c.r)
		c.Conn.SetReadDeadline(time.Time{})
		if err != nil {
			c.err = err
			c.Conn.Close()
			return
		}
		if src.IsValid() {
			c.remote = net.TCPAddrFromAddrPort(src)
		}
	})
}

func (c *protocolConn) Read(b []byte) (int, error) {
	c.header()
	if c.err != nil {
		return 0, c.err
	}
	return c.r.Read(b)
}

// RemoteAddr is the client the PROXY protocol header names; it waits for
// the header.
func (c *protocolConn) RemoteAddr() net.Addr {
	c.header()
	return c.remote
}

// readHeader reads a PROXY protocol header, v1 or v2, from r and returns
// the source address it names: the client, or the zero AddrPort when the
// header says the connection is the load balancer's own (v2 LOCAL, v1
// UNKNOWN, or an address family other than TCP over IPv4 or IPv6). It
// reads nothing past the header. Anything else first is errNoHeader.
func readHeader(r *bufio.Reader) (netip.AddrPort, error) {
	first, err := r.Peek(1)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("proxies: reading PROXY protocol header: %w", err)
	}
	switch first[0] {
	case 'P':
		return readV1(r)
	case v2Signature[0]:
		return readV2(r)
	}
	return netip.AddrPort{}, errNoHeader
}

// readV1 reads "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n" or
// "PROXY UNKNOWN ...\r\n".
func readV1(r *bufio.Reader) (netip.AddrPort, error) {
	var line []byte
	for {
		b, err := r.ReadByte()
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("proxies: reading PROXY protocol v1 header: %w", err)
		}
		line = append(line, b)
		if b == '\n' {
			break
		}
		if len(line) == maxV1Bytes {
			return netip.AddrPort{}, fmt.Errorf("proxies: PROXY protocol v1 header longer than %d bytes", maxV1Bytes)
		}
	}
	s, ok := strings.CutSuffix(string(line), "\r\n")
	if !ok {
		return netip.AddrPort{}, errors.New("proxies: PROXY protocol v1 header does not end in CRLF")
	}
	f := strings.Split(s, " ")
	if f[0] != "PROXY" || len(f) < 2 {
		return netip.AddrPort{}, errNoHeader
	}
	if f[1] == "UNKNOWN" {
		return netip.AddrPort{}, nil // the rest is to be ignored
	}
	if len(f) != 6 || (f[1] != "TCP4" && f[1] != "TCP6") {
		return netip.AddrPort{}, fmt.Errorf("proxies: malformed PROXY protocol v1 header %q", s)
	}
	src, err1 := netip.ParseAddr(f[2])
	dst, err2 := netip.ParseAddr(f[3])
	sport, err3 := v1Port(f[4])
	_, err4 := v1Port(f[5])
	if err := errors.Join(err1, err2, err3, err4); err != nil || src.Zone() != "" || dst.Zone() != "" ||
		src.Is4() != (f[1] == "TCP4") || dst.Is4() != (f[1] == "TCP4") {
		return netip.AddrPort{}, fmt.Errorf("proxies: malformed PROXY protocol v1 header %q", s)
	}
	return netip.AddrPortFrom(src.Unmap(), sport), nil
}

// v1Port reads a v1 port: decimal, 0 to 65535, no sign or leading zero.
func v1Port(s string) (uint16, error) {
	if len(s) > 1 && s[0] == '0' {
		return 0, errors.New("leading zero")
	}
	if s == "" || s[0] < '0' || s[0] > '9' {
		return 0, errors.New("not a port")
	}
	n, err := strconv.ParseUint(s, 10, 16)
	return uint16(n), err
}

// readV2 reads the binary header: the signature, version and command,
// family and protocol, the length of what follows, then the addresses
// and TLVs, which are skipped.
func readV2(r *bufio.Reader) (netip.AddrPort, error) {
	var fixed [16]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return netip.AddrPort{}, fmt.Errorf("proxies: reading PROXY protocol v2 header: %w", err)
	}
	if !bytes.Equal(fixed[:12], v2Signature) {
		return netip.AddrPort{}, errNoHeader
	}
	verCmd, fam := fixed[12], fixed[13]
	n := int(binary.BigEndian.Uint16(fixed[14:]))
	if verCmd>>4 != 2 {
		return netip.AddrPort{}, fmt.Errorf("proxies: PROXY protocol version %d, want 2", verCmd>>4)
	}
	cmd := verCmd & 0xf
	if cmd > 1 {
		return netip.AddrPort{}, fmt.Errorf("proxies: PROXY protocol v2 command %d, want LOCAL or PROXY", cmd)
	}
	if n > MaxV2Bytes {
		return netip.AddrPort{}, fmt.Errorf("proxies: PROXY protocol v2 header of %d bytes, at most %d", n, MaxV2Bytes)
	}
	rest := make([]byte, n)
	if _, err := io.ReadFull(r, rest); err != nil {
		return netip.AddrPort{}, fmt.Errorf("proxies: reading PROXY protocol v2 header: %w", err)
	}
	if cmd == 0 {
		return netip.AddrPort{}, nil // LOCAL: the load balancer's own connection
	}
	var src netip.Addr
	var port []byte
	switch fam {
	case 0x11: // TCP over IPv4
		if n < 12 {
			return netip.AddrPort{}, fmt.Errorf("proxies: PROXY protocol v2 IPv4 addresses in %d bytes", n)
		}
		src, port = netip.AddrFrom4([4]byte(rest[:4])), rest[8:10]
	case 0x21: // TCP over IPv6
		if n < 36 {
			return netip.AddrPort{}, fmt.Errorf("proxies: PROXY protocol v2 IPv6 addresses in %d bytes", n)
		}
		src, port = netip.AddrFrom16([16]byte(rest[:16])), rest[32:34]
	default: // UNSPEC, UDP, unix sockets: no client address to take
		return netip.AddrPort{}, nil
	}
	return netip.AddrPortFrom(src.Unmap(), binary.BigEndian.Uint16(port)), nil
}
