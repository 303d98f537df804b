package assist

import (
	"net"
	"net/netip"

	"supportgate/internal/wgstack"
)

// DefaultMTU is the tunnel MTU when the path's is unknown: WireGuard's
// usual 1420, which fits a 1500-byte path over IPv4 or IPv6.
const DefaultMTU = 1420

// wireGuardOverhead is what wg-quick subtracts from a path's MTU for the
// tunnel's: an outer IPv6 header (40), UDP (8) and WireGuard's header and
// tag (32).
const wireGuardOverhead = 80

// tunnelMTU is the tunnel MTU for reaching endpoint (an address literal
// with a port), derived as wg-quick does: the MTU of the route to the
// endpoint minus WireGuard's overhead. A 1500-byte Ethernet path gives
// 1420, a jumbo-frame LAN 8920, a gateway on this host (loopback) the
// largest a UDP datagram carries. Only TCP crosses the tunnel, and each
// side's TCP announces its MSS from its own MTU, so a bigger MTU here
// never makes the gateway send packets larger than it chose; the gateway's
// hub accepts any size. It falls back to DefaultMTU.
func tunnelMTU(endpoint string) int {
	ap, err := netip.ParseAddrPort(endpoint)
	if err != nil {
		return DefaultMTU
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(ap)) // connects; sends nothing
	if err != nil {
		return DefaultMTU
	}
	defer c.Close()
	route, ok := routeMTU(c, ap.Addr().Unmap().Is4())
	if !ok {
		return DefaultMTU
	}
	return min(max(route-wireGuardOverhead, wgstack.MinMTU), wgstack.MaxMTU)
}
