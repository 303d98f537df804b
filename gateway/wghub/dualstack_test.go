package wghub_test

import (
	"context"
	"fmt"
	"net"
	"testing"

	"supportgate/session"
)

// TestDualStackSocket: `serve --wg-addr :51820` hands the hub an IPv6
// socket that also carries IPv4; a helper on IPv4 must get through, and
// so must one on IPv6 loopback when the machine has it.
func TestDualStackSocket(t *testing.T) {
	for _, tc := range []struct{ name, helperNet, endpointHost string }{
		{"ipv4 helper", "udp4", "127.0.0.1"},
		{"ipv6 helper", "udp6", "::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hubConn, err := net.ListenUDP("udp", &net.UDPAddr{})
			if err != nil {
				t.Fatal(err)
			}
			defer hubConn.Close()
			if tc.helperNet == "udp6" {
				c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
				if err != nil {
					t.Skipf("no IPv6 loopback: %v", err)
				}
				c.Close()
			}
			port := hubConn.LocalAddr().(*net.UDPAddr).Port
			endpoint := net.JoinHostPort(tc.endpointHost, fmt.Sprint(port))
			ln, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			sink(t, ln)
			h := hubAndHelperOn(t, hubConn, endpoint, tc.helperNet, ln.Addr().String(), 0)
			c, err := h.Dial(context.Background(), "s1", session.Need{Agent: "alice", Kind: session.Tunnel, Port: 9})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			c.(interface{ CloseWrite() error }).CloseWrite()
			b := make([]byte, 1)
			if _, err := c.Read(b); err != nil {
				t.Fatalf("through a dual-stack hub socket: %v", err)
			}
		})
	}
}
