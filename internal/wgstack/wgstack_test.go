package wgstack

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/tun"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// wire moves packets from a to b until a closes, as WireGuard would
// (without the crypto), in batches of up to batchSize.
func wire(t testing.TB, a, b tun.Device, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		const off = 16
		bufs := make([][]byte, batchSize)
		for i := range bufs {
			bufs[i] = make([]byte, off+65535)
		}
		sizes := make([]int, batchSize)
		for {
			n, err := a.Read(bufs, sizes, off)
			if err != nil {
				return
			}
			out := make([][]byte, 0, n)
			for i := range n {
				if sizes[i] > 0 {
					out = append(out, bufs[i][:off+sizes[i]])
				}
			}
			if _, err := b.Write(out, off); err != nil {
				t.Error(err)
				return
			}
		}
	}()
}

// pair is two stacks wired back to back.
func pair(t testing.TB, mtuA, mtuB int) (na, nb *Net, aAddr, bAddr netip.Addr) {
	t.Helper()
	aAddr, bAddr = netip.MustParseAddr("100.96.0.1"), netip.MustParseAddr("100.96.0.2")
	ta, na, err := New([]netip.Addr{aAddr}, mtuA)
	if err != nil {
		t.Fatal(err)
	}
	tb, nb, err := New([]netip.Addr{bAddr}, mtuB)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wire(t, ta, tb, &wg)
	wire(t, tb, ta, &wg)
	t.Cleanup(func() {
		ta.Close()
		tb.Close()
		wg.Wait()
	})
	return na, nb, aAddr, bAddr
}

// transfer sends size random bytes from na to a listener on nb over each
// of flows parallel connections and checks they arrive intact.
func transfer(t *testing.T, na, nb *Net, bAddr netip.Addr, flows, size int) {
	t.Helper()
	ln, err := nb.ListenTCPAddrPort(netip.AddrPortFrom(bAddr, 9))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	want := make([]byte, size)
	rand.Read(want)
	got := make(chan []byte, flows)
	go func() {
		for range flows {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(c)
				c.Write([]byte{1})
				got <- b
			}()
		}
	}()
	errs := make(chan error, flows)
	for range flows {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := na.DialContextTCPAddrPort(ctx, netip.AddrPortFrom(bAddr, 9))
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			if _, err := c.Write(want); err != nil {
				errs <- err
				return
			}
			c.CloseWrite()
			_, err = io.ReadFull(c, make([]byte, 1))
			errs <- err
		}()
	}
	for range flows {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for range flows {
		if b := <-got; !bytes.Equal(b, want) {
			t.Fatalf("got %d bytes, want the %d sent", len(b), len(want))
		}
	}
}

func TestTransfer(t *testing.T) {
	for _, tc := range []struct {
		name        string
		mtuA, mtuB  int
		flows, size int
	}{
		{"1420", 1420, 1420, 1, 4 << 20},
		{"largest", MaxMTU, MaxMTU, 1, 4 << 20},
		{"mixed MTUs", MaxMTU, 1420, 1, 4 << 20},
		{"mixed MTUs reversed", 1420, MaxMTU, 1, 4 << 20},
		{"parallel", 1420, 1420, 24, 256 << 10}, // GRO buckets shared by flows
	} {
		t.Run(tc.name, func(t *testing.T) {
			na, nb, _, bAddr := pair(t, tc.mtuA, tc.mtuB)
			transfer(t, na, nb, bAddr, tc.flows, tc.size)
		})
	}
}

func TestMTURange(t *testing.T) {
	for _, mtu := range []int{0, MinMTU - 1, MaxMTU + 1} {
		if _, _, err := New([]netip.Addr{netip.MustParseAddr("100.96.0.1")}, mtu); err == nil {
			t.Errorf("New with MTU %d: got no error", mtu)
		}
	}
}

// TestCloseUnblocksWriters fills the link's queue with nobody reading,
// then closes the device: the stack's writers must not stay stuck.
func TestCloseUnblocksWriters(t *testing.T) {
	td, n, err := New([]netip.Addr{netip.MustParseAddr("100.96.0.1")}, 1420)
	if err != nil {
		t.Fatal(err)
	}
	c, err := n.DialUDPAddrPort(netip.AddrPort{}, netip.MustParseAddrPort("100.96.0.2:9"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 2 * queueLen {
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	td.Close()
	td.Close() // idempotent
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a writer is still blocked after Close")
	}
	if _, err := td.Read(make([][]byte, 1), make([]int, 1), 0); err == nil {
		t.Error("Read after Close: got no error")
	}
}

// countingDispatcher counts the TCP payload bytes delivered to it.
type countingDispatcher struct{ bytes, packets int }

func (d *countingDispatcher) DeliverNetworkPacket(_ tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	b := pkt.Data().AsRange().ToSlice()
	ip := header.IPv4(b)
	tcp := header.TCP(b[ip.HeaderLength():])
	d.bytes += int(ip.TotalLength()) - int(ip.HeaderLength()) - int(tcp.DataOffset())
	d.packets++
}

func (d *countingDispatcher) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer) {}

// tcpPacket is an IPv4 TCP segment with valid checksums.
func tcpPacket(srcPort uint16, seq uint32, payload []byte) []byte {
	src, dst := tcpip.AddrFrom4([4]byte{100, 96, 0, 2}), tcpip.AddrFrom4([4]byte{100, 96, 0, 1})
	b := make([]byte, header.IPv4MinimumSize+header.TCPMinimumSize+len(payload))
	ip := header.IPv4(b)
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(len(b)), TTL: 64, Protocol: uint8(header.TCPProtocolNumber), SrcAddr: src, DstAddr: dst})
	ip.SetChecksum(^ip.CalculateChecksum())
	tcp := header.TCP(b[header.IPv4MinimumSize:])
	tcp.Encode(&header.TCPFields{SrcPort: srcPort, DstPort: 9, SeqNum: seq, AckNum: 1, DataOffset: header.TCPMinimumSize,
		Flags: header.TCPFlagAck, WindowSize: 65535})
	copy(tcp.Payload(), payload)
	xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(len(tcp)))
	xsum = checksum.Checksum(payload, xsum)
	tcp.SetChecksum(^tcp.CalculateChecksum(xsum))
	return b
}

// TestWriteLeavesNothingInGRO hands the link one batch of segments of
// many flows, several to a GRO bucket: every byte must be delivered when
// the write returns, coalesced.
func TestWriteLeavesNothingInGRO(t *testing.T) {
	l := newLink(1420)
	d := &countingDispatcher{}
	l.Attach(d)
	const flows, perFlow, size = 40, 4, 1000
	var bufs [][]byte
	for i := range perFlow {
		for f := range flows {
			bufs = append(bufs, tcpPacket(uint16(1000+f), uint32(i*size), make([]byte, size)))
		}
	}
	l.write(bufs, 0)
	if want := flows * perFlow * size; d.bytes != want {
		t.Fatalf("delivered %d payload bytes, want %d", d.bytes, want)
	}
	if d.packets >= flows*perFlow {
		t.Errorf("delivered %d packets for %d segments: nothing coalesced", d.packets, flows*perFlow)
	}
}
