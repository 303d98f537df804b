package assist

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// startTestEndpoint starts an endpoint enrolled with scopes, its gateway a
// UDP socket that never answers: enough to see what the endpoint listens on.
func startTestEndpoint(t *testing.T, scopes []string) *Endpoint {
	t.Helper()
	gw, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var gwKey, priv [32]byte
	rand.Read(gwKey[:])
	rand.Read(priv[:])
	gwPub, _, _ := ed25519.GenerateKey(rand.Reader)
	gwSSH, _ := ssh.NewPublicKey(gwPub)
	_, hk, _ := ed25519.GenerateKey(rand.Reader)
	host, _ := ssh.NewSignerFromKey(hk)
	e, err := StartEndpoint(EndpointConfig{
		Enrollment: &Enrollment{
			GatewayKey: base64.StdEncoding.EncodeToString(gwKey[:]), Endpoint: gw.LocalAddr().String(),
			Address: "10.77.0.2/32", GatewayAddress: "10.77.0.1", SSHPort: 22,
			GatewaySSHKey: string(ssh.MarshalAuthorizedKey(gwSSH)), Scopes: scopes,
		},
		PrivateKey: priv, HostKey: host, Conn: uc, MTU: 1420,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(); uc.Close() })
	return e
}

// TestEndpointServesConsentedOnly: the SSH endpoint listens only when a
// shell was consented; tunnel ports listen when consented.
func TestEndpointServesConsentedOnly(t *testing.T) {
	for _, tc := range []struct {
		name   string
		scopes []string
		ssh    bool
		tunnel bool // port 8080
	}{
		{"shell", []string{"shell"}, true, false},
		{"tunnel only", []string{"tunnel:8080"}, false, true},
		{"view and tunnel", []string{"view", "tunnel:8080"}, false, true},
		{"shell and tunnel", []string{"shell", "tunnel:8080"}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startTestEndpoint(t, tc.scopes)
			for _, p := range []struct {
				port uint16
				want bool
			}{{22, tc.ssh}, {8080, tc.tunnel}} {
				// The netstack delivers to its own address; what listens
				// accepts (and closes: not from the gateway), what does not
				// refuses.
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				c, err := e.tnet.DialContextTCPAddrPort(ctx, netip.AddrPortFrom(e.Address(), p.port))
				cancel()
				if err == nil {
					c.Close()
				}
				if got := err == nil; got != p.want {
					t.Errorf("port %d listening: got %v (%v), want %v", p.port, got, err, p.want)
				}
			}
		})
	}
}
