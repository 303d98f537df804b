package assist

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// startTestEndpoint starts an endpoint enrolled with scopes, its gateway a
// UDP socket that never answers: enough to see what the endpoint listens on.
func startTestEndpoint(t *testing.T, scopes []string) *Endpoint {
	t.Helper()
	return startConsentedEndpoint(t, scopes, nil)
}

// startConsentedEndpoint is startTestEndpoint for a customer who
// consented to consented.
func startConsentedEndpoint(t *testing.T, scopes, consented []string) *Endpoint {
	t.Helper()
	return startEndpointWith(t, scopes, func(c *EndpointConfig) { c.Consented = consented }).e
}

// testEndpoint is an endpoint on loopback with a made-up gateway: the
// gateway's SSH key and the endpoint's host key, for a client of
// ServeSSH.
type testEndpoint struct {
	e        *Endpoint
	gw, host ssh.Signer
}

// startEndpointWith starts an endpoint enrolled for scopes, its config
// adjusted by adjust, and closes it when the test ends.
func startEndpointWith(t *testing.T, scopes []string, adjust func(*EndpointConfig)) testEndpoint {
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
	_, gwPriv, _ := ed25519.GenerateKey(rand.Reader)
	gwSigner, _ := ssh.NewSignerFromKey(gwPriv)
	_, hk, _ := ed25519.GenerateKey(rand.Reader)
	host, _ := ssh.NewSignerFromKey(hk)
	cfg := EndpointConfig{
		Enrollment: &Enrollment{
			GatewayKey: base64.StdEncoding.EncodeToString(gwKey[:]), Endpoint: gw.LocalAddr().String(),
			Address: "10.77.0.2/32", GatewayAddress: "10.77.0.1", SSHPort: 22,
			GatewaySSHKey: string(ssh.MarshalAuthorizedKey(gwSigner.PublicKey())), Scopes: scopes,
		},
		PrivateKey: priv, HostKey: host, Conn: uc, MTU: 1420,
	}
	if adjust != nil {
		adjust(&cfg)
	}
	e, err := StartEndpoint(cfg)
	if err != nil {
		uc.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(); uc.Close() })
	return testEndpoint{e: e, gw: gwSigner, host: host}
}

// TestEndpointServesConsentedOnly: the SSH endpoint listens only when a
// shell was consented; tunnel ports listen when consented.
func TestEndpointServesConsentedOnly(t *testing.T) {
	for _, tc := range []struct {
		name      string
		scopes    []string
		consented []string // nil: not checked
		ssh       bool
		tunnel    bool // port 8080
	}{
		{"shell", []string{"shell"}, nil, true, false},
		{"tunnel only", []string{"tunnel:8080"}, nil, false, true},
		{"view and tunnel", []string{"view", "tunnel:8080"}, nil, false, true},
		{"shell and tunnel", []string{"shell", "tunnel:8080"}, nil, true, true},
		// A gateway that enrolls for more than the customer saw and
		// agreed to gets only what was agreed.
		{"shell enrolled, tunnel consented", []string{"shell", "tunnel:8080"}, []string{"tunnel:8080"}, false, true},
		{"port enrolled, other port consented", []string{"tunnel:8080,9090"}, []string{"tunnel:9090"}, false, false},
		{"nothing consented", []string{"shell", "tunnel:8080"}, []string{}, false, false},
		{"both consented", []string{"shell", "tunnel:8080"}, []string{"shell", "tunnel:8080"}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startConsentedEndpoint(t, tc.scopes, tc.consented)
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

func TestAllowedScopes(t *testing.T) {
	for _, tc := range []struct {
		enrolled, consented []string
		allowed, refused    string
	}{
		{[]string{"shell", "tunnel:80"}, []string{"shell", "tunnel:80"}, "shell tunnel:80", ""},
		{[]string{"shell", "tunnel:80"}, []string{"tunnel:80"}, "tunnel:80", "shell"},
		{[]string{"tunnel:80,22,443"}, []string{"tunnel:443,80"}, "tunnel:80,443", "tunnel:22"},
		{[]string{"tunnel:80"}, []string{"tunnel:8080"}, "", "tunnel:80"},
		{[]string{"view", "shell"}, []string{"view"}, "view", "shell"},
		{[]string{"tunnel:080"}, []string{"tunnel:80"}, "", "tunnel:080"},
		{nil, []string{"shell"}, "", ""},
	} {
		allowed, refused := AllowedScopes(tc.enrolled, tc.consented)
		if got := strings.Join(allowed, " "); got != tc.allowed {
			t.Errorf("AllowedScopes(%q, %q) allowed %q, want %q", tc.enrolled, tc.consented, got, tc.allowed)
		}
		if got := strings.Join(refused, " "); got != tc.refused {
			t.Errorf("AllowedScopes(%q, %q) refused %q, want %q", tc.enrolled, tc.consented, got, tc.refused)
		}
	}
}
