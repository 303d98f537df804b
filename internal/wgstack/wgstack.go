// Package wgstack is a userspace TCP/IP stack (gVisor's netstack) behind a
// wireguard-go tun.Device, for the gateway's hub and the customer's helper:
// neither needs root or a TUN device. It does what wireguard-go's
// tun/netstack does, but moves packets between the stack and WireGuard in
// batches (one Read returns every queued packet, not one), coalesces the
// TCP segments WireGuard delivers in a batch before the stack sees them
// (GRO), and lets TCP keep 64 KiB segments that are split only on the
// way out (GSO). Like tun/netstack it turns on TCP SACK and keeps
// gVisor's TCP buffer sizes (larger ones measured no faster).
package wgstack

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/tun"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// batchSize is the most packets one read of the device returns.
const batchSize = conn.IdealBatchSize

// MaxMTU is the largest tunnel MTU: a WireGuard packet carrying it (32
// bytes of WireGuard header and tag, up to 15 of padding) still fits in
// one UDP datagram over IPv4 or IPv6, which is how wg-quick derives a
// tunnel MTU from the MTU of the path (the path's MTU minus 80).
const MaxMTU = 65535 - 80

// MinMTU is the smallest MTU IPv6 allows.
const MinMTU = 1280

// Net is the stack: TCP and UDP on the tunnel addresses.
type Net struct {
	stack *stack.Stack
	link  *link
	once  sync.Once
}

const nicID = 1

// New makes a stack with the given addresses and MTU, and the tun.Device
// to hand to wireguard-go's device.NewDevice. Closing the WireGuard device
// closes the device and stops the stack.
func New(addrs []netip.Addr, mtu int) (tun.Device, *Net, error) {
	if mtu < MinMTU || mtu > MaxMTU {
		return nil, nil, fmt.Errorf("wgstack: MTU %d outside [%d, %d]", mtu, MinMTU, MaxMTU)
	}
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
		HandleLocal:        true,
	})
	if err := tuneTCP(s); err != nil {
		s.Close()
		return nil, nil, err
	}
	l := newLink(mtu)
	n := &Net{stack: s, link: l}
	if err := s.CreateNIC(nicID, l); err != nil {
		s.Close()
		return nil, nil, fmt.Errorf("wgstack: creating NIC: %v", err)
	}
	var has4, has6 bool
	for _, a := range addrs {
		proto := ipv4.ProtocolNumber
		if a.Is6() && !a.Is4In6() {
			proto, has6 = ipv6.ProtocolNumber, true
		} else {
			a, has4 = a.Unmap(), true
		}
		pa := tcpip.ProtocolAddress{Protocol: proto, AddressWithPrefix: tcpip.AddrFromSlice(a.AsSlice()).WithPrefix()}
		if err := s.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); err != nil {
			n.close()
			return nil, nil, fmt.Errorf("wgstack: address %s: %v", a, err)
		}
	}
	if has4 {
		s.AddRoute(tcpip.Route{Destination: header.IPv4EmptySubnet, NIC: nicID})
	}
	if has6 {
		s.AddRoute(tcpip.Route{Destination: header.IPv6EmptySubnet, NIC: nicID})
	}
	td := &tunDevice{l: l, net: n, events: make(chan tun.Event, 1)}
	td.events <- tun.EventUp
	return td, n, nil
}

// tuneTCP turns on SACK, which gVisor leaves off, so that a lost packet
// costs TCP one retransmission, not a window.
func tuneTCP(s *stack.Stack) error {
	sack := tcpip.TCPSACKEnabled(true)
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack); err != nil {
		return fmt.Errorf("wgstack: enabling TCP SACK: %v", err)
	}
	return nil
}

// close stops the link first, so that nothing the stack sends while it
// shuts down can wait on a reader that is gone, then the stack.
func (n *Net) close() {
	n.once.Do(func() {
		n.link.shut()
		n.stack.RemoveNIC(nicID)
		n.stack.Close()
	})
}

func fullAddr(ap netip.AddrPort) (tcpip.FullAddress, tcpip.NetworkProtocolNumber) {
	a := ap.Addr().Unmap()
	proto := ipv4.ProtocolNumber
	if a.Is6() {
		proto = ipv6.ProtocolNumber
	}
	return tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFromSlice(a.AsSlice()), Port: ap.Port()}, proto
}

// DialContextTCPAddrPort opens a TCP connection to addr.
func (n *Net) DialContextTCPAddrPort(ctx context.Context, addr netip.AddrPort) (*gonet.TCPConn, error) {
	fa, proto := fullAddr(addr)
	return gonet.DialContextTCP(ctx, n.stack, fa, proto)
}

// ListenTCPAddrPort listens for TCP connections on addr.
func (n *Net) ListenTCPAddrPort(addr netip.AddrPort) (*gonet.TCPListener, error) {
	fa, proto := fullAddr(addr)
	return gonet.ListenTCP(n.stack, fa, proto)
}

// DialUDPAddrPort opens a UDP socket from laddr to raddr.
func (n *Net) DialUDPAddrPort(laddr, raddr netip.AddrPort) (*gonet.UDPConn, error) {
	if !raddr.IsValid() {
		return nil, errors.New("wgstack: UDP needs a remote address")
	}
	rfa, proto := fullAddr(raddr)
	var lfa *tcpip.FullAddress
	if laddr.IsValid() {
		a, _ := fullAddr(laddr)
		lfa = &a
	}
	return gonet.DialUDP(n.stack, lfa, &rfa, proto)
}
