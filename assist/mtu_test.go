package assist

import (
	"net"
	"runtime"
	"testing"

	"supportgate/internal/wgstack"
)

func TestTunnelMTU(t *testing.T) {
	if got := tunnelMTU("not an endpoint"); got != DefaultMTU {
		t.Errorf("unparseable endpoint: got %d, want %d", got, DefaultMTU)
	}
	if runtime.GOOS != "linux" {
		t.Skip("path MTUs are read on Linux only")
	}
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skip("no lo interface:", err)
	}
	want := min(lo.MTU-wireGuardOverhead, wgstack.MaxMTU)
	if got := tunnelMTU("127.0.0.1:51820"); got != want {
		t.Errorf("gateway on loopback (lo MTU %d): got %d, want %d", lo.MTU, got, want)
	}
	// A route through a usual interface: that interface's MTU minus 80.
	c, err := net.Dial("udp4", "192.0.2.1:51820")
	if err != nil {
		return // no IPv4 route out
	}
	local := c.LocalAddr().(*net.UDPAddr).IP
	c.Close()
	ifs, _ := net.Interfaces()
	for _, ifc := range ifs {
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(local) {
				want := max(ifc.MTU-wireGuardOverhead, wgstack.MinMTU)
				t.Logf("gateway through %s: tunnel MTU %d", ifc.Name, tunnelMTU("192.0.2.1:51820"))
				if got := tunnelMTU("192.0.2.1:51820"); got != want {
					t.Errorf("gateway through %s (MTU %d): got %d, want %d", ifc.Name, ifc.MTU, got, want)
				}
			}
		}
	}
}
