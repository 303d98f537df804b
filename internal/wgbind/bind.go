// Package wgbind is a wireguard-go conn.Bind over a UDP socket that someone
// else opened. The gateway's hub and the customer-side helper both use it,
// so that neither library listens by itself: cmd/ opens the socket and
// hands it over. On Linux it moves packets in batches (recvmmsg/sendmmsg).
package wgbind

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
)

// BatchSize is how many packets one read or write moves.
const BatchSize = conn.IdealBatchSize

// SocketBuffer is the send and receive buffer size asked of the socket.
const SocketBuffer = 7 << 20

// Bind is a conn.Bind over a given *net.UDPConn. Close stops the receive
// functions but leaves the socket open: the socket belongs to its opener.
type Bind struct {
	uc *net.UDPConn
	pc *ipv4.PacketConn // batch reads and writes; works on IPv6 sockets too (raw sockaddrs)

	mu     sync.Mutex // guards open, msgs
	open   bool
	wmsgs  []ipv4.Message
	closed chan struct{}
}

var _ conn.Bind = (*Bind)(nil)

// New wraps c. The caller keeps ownership of c and closes it after the
// WireGuard device that uses the Bind has been closed.
func New(c *net.UDPConn) *Bind {
	// Bursts of a whole batch per peer overflow the default socket
	// buffers and the losses halve TCP's window inside the tunnel; ask
	// for what wireguard-go's own bind asks for (the kernel caps it).
	c.SetReadBuffer(SocketBuffer)
	c.SetWriteBuffer(SocketBuffer)
	return &Bind{uc: c, pc: ipv4.NewPacketConn(c)}
}

// Endpoint is a peer's UDP address.
type Endpoint netip.AddrPort

var _ conn.Endpoint = Endpoint{}

func (e Endpoint) ClearSrc()           {}
func (e Endpoint) SrcToString() string { return "" }
func (e Endpoint) DstToString() string { return netip.AddrPort(e).String() }
func (e Endpoint) DstToBytes() []byte  { b, _ := netip.AddrPort(e).MarshalBinary(); return b }
func (e Endpoint) DstIP() netip.Addr   { return netip.AddrPort(e).Addr() }
func (e Endpoint) SrcIP() netip.Addr   { return netip.Addr{} }

// Open starts receiving. The port is the socket's own; the argument is
// ignored because the socket is already bound.
func (b *Bind) Open(uint16) ([]conn.ReceiveFunc, uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.open {
		return nil, 0, conn.ErrBindAlreadyOpen
	}
	b.open = true
	b.closed = make(chan struct{})
	// A past deadline set by Close must not stop the new receivers.
	if err := b.uc.SetReadDeadline(time.Time{}); err != nil {
		return nil, 0, err
	}
	port := uint16(0)
	if a, ok := b.uc.LocalAddr().(*net.UDPAddr); ok {
		port = uint16(a.Port)
	}
	msgs := make([]ipv4.Message, BatchSize)
	for i := range msgs {
		msgs[i].Buffers = make([][]byte, 1)
	}
	closed := b.closed
	recv := func(packets [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		n := min(len(packets), len(msgs))
		for i := 0; i < n; i++ {
			msgs[i].Buffers[0] = packets[i]
			msgs[i].N, msgs[i].Addr = 0, nil
		}
		got, err := b.pc.ReadBatch(msgs[:n], 0)
		if err != nil {
			select {
			case <-closed:
				return 0, net.ErrClosed
			default:
			}
			return 0, err
		}
		for i := 0; i < got; i++ {
			sizes[i] = msgs[i].N
			ua, _ := msgs[i].Addr.(*net.UDPAddr)
			if ua == nil {
				sizes[i] = 0
				eps[i] = Endpoint{}
				continue
			}
			ap := ua.AddrPort()
			eps[i] = Endpoint(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
		}
		return got, nil
	}
	return []conn.ReceiveFunc{recv}, port, nil
}

// Close stops the receive functions by setting a read deadline in the past.
func (b *Bind) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return nil
	}
	b.open = false
	close(b.closed)
	err := b.uc.SetReadDeadline(time.Unix(1, 0))
	if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) {
		err = nil
	}
	return err
}

// SetMark is not supported on a borrowed socket; it is a no-op.
func (b *Bind) SetMark(uint32) error { return nil }

// Send writes bufs to ep in as few system calls as the kernel allows.
func (b *Bind) Send(bufs [][]byte, ep conn.Endpoint) error {
	e, ok := ep.(Endpoint)
	if !ok {
		return conn.ErrWrongEndpointType
	}
	ap := netip.AddrPort(e)
	addr := net.UDPAddrFromAddrPort(ap)
	if la, ok := b.uc.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() == nil && ap.Addr().Is4() {
		// An IPv6 socket reaches IPv4 peers through mapped addresses.
		addr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom16(ap.Addr().As16()), ap.Port()))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if cap(b.wmsgs) < len(bufs) {
		b.wmsgs = make([]ipv4.Message, len(bufs))
		for i := range b.wmsgs {
			b.wmsgs[i].Buffers = make([][]byte, 1)
		}
	}
	msgs := b.wmsgs[:len(bufs)]
	for i, buf := range bufs {
		msgs[i].Buffers[0] = buf
		msgs[i].Addr = addr
	}
	for len(msgs) > 0 {
		n, err := b.pc.WriteBatch(msgs, 0)
		if err != nil {
			return err
		}
		msgs = msgs[n:]
	}
	return nil
}

// ParseEndpoint parses "host:port" with a literal address.
func (b *Bind) ParseEndpoint(s string) (conn.Endpoint, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return nil, err
	}
	return Endpoint(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())), nil
}

// BatchSize is the most packets Send and a receive function move at once.
func (b *Bind) BatchSize() int { return BatchSize }

// Logger routes wireguard-go's log lines to l at debug level (its errors
// at warn): the device is chatty and its lines are not events.
func Logger(l *slog.Logger, prefix string) *device.Logger {
	return &device.Logger{
		Verbosef: func(format string, args ...any) { l.Debug(prefix + ": " + fmt.Sprintf(format, args...)) },
		Errorf:   func(format string, args ...any) { l.Warn(prefix + ": " + fmt.Sprintf(format, args...)) },
	}
}
