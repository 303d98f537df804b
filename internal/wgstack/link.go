package wgstack

import (
	"os"
	"sync"

	"golang.zx2c4.com/wireguard/tun"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/stack/gro"
)

// queueLen bounds the packets the stack has written and WireGuard has not
// read yet. A full queue makes the stack's writer wait, as wireguard-go's
// own netstack does (its queue holds a single packet), rather than drop:
// a drop inside the tunnel costs TCP a window.
const queueLen = 1024

// groBucketSize is gvisor.dev/gvisor/pkg/tcpip/stack/gro's groBucketSize:
// the most packets one of its buckets holds.
const groBucketSize = 8

// link is the pipe between the gVisor stack and the WireGuard device: a
// stack.LinkEndpoint below the stack, and through tunDevice a tun.Device
// above WireGuard.
type link struct {
	mtu uint32

	mu       sync.Mutex // guards the fields below
	readable sync.Cond  // signalled when q gains packets or the link closes
	writable sync.Cond  // signalled when q has room or the link closes
	q        []*stack.PacketBuffer
	head     int // q[head:] are the queued packets
	closed   bool
	disp     stack.NetworkDispatcher

	groPool sync.Pool // *gro.GRO, one per concurrent write (WireGuard writes from one goroutine per peer)
}

var (
	_ stack.LinkEndpoint = (*link)(nil)
	_ stack.GSOEndpoint  = (*link)(nil)
)

func newLink(mtu int) *link {
	l := &link{mtu: uint32(mtu), q: make([]*stack.PacketBuffer, 0, queueLen)}
	l.readable.L = &l.mu
	l.writable.L = &l.mu
	return l
}

// ---- stack.LinkEndpoint: the stack's side ----

func (l *link) MTU() uint32                      { return l.mtu }
func (l *link) SetMTU(uint32)                    {}
func (l *link) MaxHeaderLength() uint16          { return 0 }
func (l *link) LinkAddress() tcpip.LinkAddress   { return "" }
func (l *link) SetLinkAddress(tcpip.LinkAddress) {}

// Capabilities says that received packets need no checksum check by the
// stack: GRO (in write) checks TCP's before it coalesces segments, which
// invalidates the senders' checksums, and WireGuard has authenticated every
// packet with Poly1305 already, which rules out what checksums detect.
func (l *link) Capabilities() stack.LinkEndpointCapabilities {
	return stack.CapabilityRXChecksumOffload
}
func (l *link) Wait()                                   {}
func (l *link) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareNone }
func (l *link) AddHeader(*stack.PacketBuffer)           {}
func (l *link) ParseHeader(*stack.PacketBuffer) bool    { return true }
func (l *link) SetOnCloseAction(func())                 {}

// GSOMaxSize and SupportedGSO let TCP keep segments of up to 64 KiB in its
// send queue and split them into MTU-sized packets only when it writes
// them (gVisor's software GSO): far less bookkeeping per byte.
func (l *link) GSOMaxSize() uint32               { return stack.GVisorGSOMaxSize }
func (l *link) SupportedGSO() stack.SupportedGSO { return stack.GVisorGSOSupported }

func (l *link) Attach(d stack.NetworkDispatcher) {
	l.mu.Lock()
	l.disp = d
	l.mu.Unlock()
}

func (l *link) IsAttached() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.disp != nil
}

// WritePackets queues packets for WireGuard to read, waiting while the
// queue is full.
func (l *link) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, pkt := range pkts.AsSlice() {
		for !l.closed && len(l.q)-l.head >= queueLen {
			l.writable.Wait()
		}
		if l.closed {
			if n == 0 {
				return 0, &tcpip.ErrClosedForSend{}
			}
			break
		}
		if l.head > 0 && len(l.q) == cap(l.q) {
			m := copy(l.q, l.q[l.head:])
			clear(l.q[m:])
			l.q, l.head = l.q[:m], 0
		}
		l.q = append(l.q, pkt.IncRef())
		n++
	}
	if n > 0 {
		l.readable.Signal()
	}
	return n, nil
}

// Close is the stack's: it runs when the NIC goes.
func (l *link) Close() { l.shut() }

// tunDevice is the link as WireGuard sees it.
type tunDevice struct {
	l      *link
	net    *Net
	events chan tun.Event
	once   sync.Once
}

var _ tun.Device = (*tunDevice)(nil)

func (t *tunDevice) File() *os.File           { return nil }
func (t *tunDevice) Name() (string, error)    { return "wgstack", nil }
func (t *tunDevice) MTU() (int, error)        { return int(t.l.mtu), nil }
func (t *tunDevice) Events() <-chan tun.Event { return t.events }
func (t *tunDevice) Read(bufs [][]byte, sizes []int, off int) (int, error) {
	return t.l.read(bufs, sizes, off)
}
func (t *tunDevice) Write(bufs [][]byte, off int) (int, error) { return t.l.write(bufs, off) }

// BatchSize is the most packets one Read returns: as many as WireGuard
// and the bind move in one go.
func (t *tunDevice) BatchSize() int { return batchSize }

// Close stops the link and the stack; WireGuard's device calls it when it
// closes. It is idempotent.
func (t *tunDevice) Close() error {
	t.once.Do(func() {
		t.net.close()
		close(t.events)
	})
	return nil
}

// ---- WireGuard's side, through tunDevice ----

// read waits for at least one packet the stack wrote and returns as many
// as are queued, up to len(bufs).
func (l *link) read(bufs [][]byte, sizes []int, offset int) (int, error) {
	l.mu.Lock()
	for !l.closed && len(l.q) == l.head {
		l.readable.Wait()
	}
	if len(l.q) == l.head {
		l.mu.Unlock()
		return 0, os.ErrClosed
	}
	var batch [batchSize]*stack.PacketBuffer
	n := copy(batch[:min(len(bufs), batchSize)], l.q[l.head:])
	clear(l.q[l.head : l.head+n])
	l.head += n
	if l.head == len(l.q) {
		l.q, l.head = l.q[:0], 0
	}
	l.writable.Broadcast()
	l.mu.Unlock()

	for i, pkt := range batch[:n] {
		dst := bufs[i][offset:]
		sizes[i] = 0
		if pkt.Size() <= len(dst) { // never larger than the MTU; dropped if it were
			sizes[i] = copyOut(dst, pkt)
		}
		pkt.DecRef()
	}
	return n, nil
}

// copyOut copies the packet (headers and payload) into dst, which is
// large enough, without the allocation of PacketBuffer.AsSlices.
func copyOut(dst []byte, pkt *stack.PacketBuffer) int {
	views, skip := pkt.AsViewList()
	m := 0
	for v := views.Front(); v != nil; v = v.Next() {
		b := v.AsSlice()
		if skip >= len(b) {
			skip -= len(b)
			continue
		}
		m += copy(dst[m:], b[skip:])
		skip = 0
	}
	return m
}

// write hands packets WireGuard decrypted to the stack, coalescing
// consecutive segments of a TCP stream first (gVisor's GRO), so the stack
// processes one large segment instead of many small ones.
func (l *link) write(bufs [][]byte, offset int) (int, error) {
	l.mu.Lock()
	d := l.disp
	l.mu.Unlock()
	if d == nil {
		return len(bufs), nil
	}
	g, _ := l.groPool.Get().(*gro.GRO)
	if g == nil {
		g = new(gro.GRO)
		g.Init(true)
	}
	g.Dispatcher = d
	for _, b := range bufs {
		p := b[offset:]
		if len(p) == 0 {
			continue
		}
		var proto tcpip.NetworkProtocolNumber
		switch p[0] >> 4 {
		case 4:
			proto = header.IPv4ProtocolNumber
		case 6:
			proto = header.IPv6ProtocolNumber
		default:
			continue
		}
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: payload(p)})
		pkt.NetworkProtocolNumber = proto
		g.Enqueue(pkt)
		pkt.DecRef()
	}
	// gVisor's Flush delivers only the first packet of each bucket (it
	// walks its list while unlinking from it); a bucket holds at most
	// groBucketSize, so that many calls empty it. Nothing may stay behind:
	// the next write may use another GRO.
	for range groBucketSize {
		g.Flush()
	}
	g.Dispatcher = nil
	l.groPool.Put(g)
	return len(bufs), nil
}

// payload copies packet p into a buffer of two chunks, its IP and TCP
// headers and the rest. gVisor's IPv4 input reads the network header
// while it holds a second reference to the header's chunk, which makes it
// copy that whole chunk first: with the headers in their own, that copy is
// a few dozen bytes, not the whole packet (up to 64 KiB).
func payload(p []byte) buffer.Buffer {
	h := headersLen(p)
	if h == 0 || h >= len(p) {
		return buffer.MakeWithData(p)
	}
	b := buffer.MakeWithView(buffer.NewViewWithData(p[:h]))
	b.Append(buffer.NewViewWithData(p[h:]))
	return b
}

// headersLen is the length of the IPv4 and TCP headers of p, or 0 if p is
// not a whole IPv4 TCP segment.
func headersLen(p []byte) int {
	if len(p) < header.IPv4MinimumSize {
		return 0
	}
	ip := header.IPv4(p)
	ihl := int(ip.HeaderLength())
	if ip.TransportProtocol() != header.TCPProtocolNumber || ihl < header.IPv4MinimumSize ||
		ip.FragmentOffset() != 0 || ip.Flags()&header.IPv4FlagMoreFragments != 0 ||
		len(p) < ihl+header.TCPMinimumSize {
		return 0
	}
	thl := int(header.TCP(p[ihl:]).DataOffset())
	if thl < header.TCPMinimumSize || len(p) < ihl+thl {
		return 0
	}
	return ihl + thl
}

// shut wakes every waiter and drops the queued packets; it is idempotent.
func (l *link) shut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	for _, pkt := range l.q[l.head:] {
		pkt.DecRef()
	}
	l.q, l.head = nil, 0
	l.readable.Broadcast()
	l.writable.Broadcast()
}
