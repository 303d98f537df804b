package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"supportgate/gateway/keys"
)

// TestTrustedProxiesConfig: trusted_proxies entries are parsed at start-up
// and a bad one is refused with the entry named; the default trusts
// nobody.
func TestTrustedProxiesConfig(t *testing.T) {
	load := func(js string) (*fileConfig, error) {
		path := filepath.Join(t.TempDir(), "config.json")
		if err := os.WriteFile(path, []byte(js), 0o600); err != nil {
			t.Fatal(err)
		}
		return loadConfig(path)
	}
	c, err := load(`{"trusted_proxies": ["10.0.0.0/8", "127.0.0.1", "2001:db8::/32"]}`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range c.trusted {
		got = append(got, p.String())
	}
	if g := strings.Join(got, " "); g != "10.0.0.0/8 127.0.0.1/32 2001:db8::/32" {
		t.Errorf("trusted: got %q, want 10.0.0.0/8 127.0.0.1/32 2001:db8::/32", g)
	}
	if c, err := load(`{"org": "A"}`); err != nil || c.trusted != nil || c.lbs != nil || c.sshLBs != nil {
		t.Errorf("no trusted_proxies, proxy_protocol or ssh_proxy_protocol: got %v, %v, %v, %v; want none", c.trusted, c.lbs, c.sshLBs, err)
	}
	if c, err := load(`{"ssh_proxy_protocol": ["10.0.0.0/8"]}`); err != nil || c.lbs != nil || !c.sshLBs.Contains(netip.MustParseAddr("10.1.2.3")) {
		t.Errorf("ssh_proxy_protocol 10.0.0.0/8: got %v, %v, %v", c.lbs, c.sshLBs, err)
	}
	if c, err := load(`{"proxy_protocol": ["10.0.0.0/8"]}`); err != nil || !c.lbs.Contains(netip.MustParseAddr("10.1.2.3")) || c.lbs.Contains(netip.MustParseAddr("11.1.2.3")) {
		t.Errorf("proxy_protocol 10.0.0.0/8: got %v, %v", c.lbs, err)
	}
	for _, tc := range []struct{ js, want string }{
		{`{"trusted_proxies": ["10.0.0.0/8", "proxy.example.com"]}`, `trusted_proxies[1] "proxy.example.com": want an address or a network`},
		{`{"trusted_proxies": ["10.0.0.1/8"]}`, `trusted_proxies[0] "10.0.0.1/8": host bits set`},
		{`{"trusted_proxies": ["0.0.0.0/0"]}`, `trusted_proxies[0] "0.0.0.0/0": trusts every address`},
		{`{"trusted_proxies": [""]}`, `trusted_proxies[0] ""`},
		{`{"trusted_proxies": "10.0.0.0/8"}`, `trusted_proxies`},
		{`{"proxy_protocol": ["10.0.0.0/8", "lb.example.com"]}`, `proxy_protocol[1] "lb.example.com": want an address or a network`},
		{`{"proxy_protocol": ["::/0"]}`, `proxy_protocol[0] "::/0": trusts every address`},
		{`{"ssh_proxy_protocol": ["10.0.0.0/8", "lb"]}`, `ssh_proxy_protocol[1] "lb": want an address or a network`},
	} {
		if _, err := load(tc.js); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error with %q", tc.js, err, tc.want)
		}
	}
}

// TestServeTrustedProxies: serve's trusted_proxies and proxy_protocol
// reach the gateway and its listener: a login through a trusted proxy on
// 127.0.0.1 is audited with the address the proxy forwarded, one from an
// untrusted 127.0.0.2 with its own whatever its X-Forwarded-For, one from
// the load balancer at 127.0.0.3 with the client its PROXY protocol header
// names, and the load balancer's connection without a header is refused.
func TestServeTrustedProxies(t *testing.T) {
	g := &gw{t: t, bin: gatewayBinary(t), data: filepath.Join(t.TempDir(), "data")}
	g.config = filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(g.config, []byte(`{"trusted_proxies": ["127.0.0.1"], "proxy_protocol": ["127.0.0.3"], "ssh_proxy_protocol": ["127.0.0.4"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	g.addr, g.sshAddr, g.wgAddr = freePort(t), freePort(t), freeUDPPort(t)
	_, port, _ := net.SplitHostPort(g.addr)
	g.url = "https://localhost:" + port
	g.start()
	t.Cleanup(g.kill)

	ca, err := os.ReadFile(filepath.Join(g.data, keys.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	// login fails a sign-in from the loopback address from, after the
	// PROXY protocol header proxyHeader if not empty.
	login := func(from, proxyHeader string) (int, error) {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err == nil && proxyHeader != "" {
				_, err = io.WriteString(c, proxyHeader)
			}
			return c, err
		}
		c := &http.Client{Transport: &http.Transport{DialContext: dial, TLSClientConfig: &tls.Config{RootCAs: pool}}}
		defer c.CloseIdleConnections()
		req, _ := http.NewRequest("POST", g.url+"/api/v1/login", strings.NewReader(`{"user": "nobody", "password": "wrong", "totp": "000000"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", "198.51.100.1, 203.0.113.7")
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	for _, c := range []struct{ from, header string }{
		{"127.0.0.1", ""},
		{"127.0.0.2", ""},
		{"127.0.0.3", "PROXY TCP4 192.0.2.44 127.0.0.1 40000 443\r\n"},
	} {
		if code, err := login(c.from, c.header); err != nil || code != http.StatusUnauthorized {
			t.Fatalf("login from %s: got %d, %v; want 401", c.from, code, err)
		}
	}
	if code, err := login("127.0.0.3", ""); err == nil {
		t.Errorf("load balancer without a PROXY header: got %d, want the connection refused", code)
	}
	export := g.mustRun("", "", "audit", "export", "--data", g.data)
	var remotes []string
	for _, line := range strings.Split(export, "\n") {
		if strings.Contains(line, `"login.failure"`) {
			_, rest, _ := strings.Cut(line, `"remote":"`)
			remote, _, _ := strings.Cut(rest, `"`)
			remotes = append(remotes, remote)
		}
	}
	if got, want := strings.Join(remotes, " "), "203.0.113.7 127.0.0.2 192.0.2.44"; got != want {
		t.Errorf("login.failure remotes: got %q, want %q", got, want)
	}

	// The SSH port greets the balancer of ssh_proxy_protocol only after its
	// PROXY header, and everyone else at once. (That the bastion then takes
	// the header's client as the source: gateway/bastion's
	// TestProxyProtocolSource.)
	for _, c := range []struct {
		from, header string
		greets       bool
	}{
		{"127.0.0.1", "", true},
		{"127.0.0.3", "", true}, // the HTTPS port's balancer, not the SSH port's
		{"127.0.0.4", "PROXY TCP4 192.0.2.45 127.0.0.1 40000 22\r\n", true},
		{"127.0.0.4", "", false},
	} {
		if got := sshGreets(t, c.from, g.sshAddr, c.header); got != c.greets {
			t.Errorf("SSH from %s with header %q: greeted %v, want %v", c.from, c.header, got, c.greets)
		}
	}
}

// sshGreets connects from the loopback address from to the SSH server at
// addr, sends header and an SSH client's version line, and reports
// whether the server answered with its own version line.
func sshGreets(t *testing.T, from, addr, header string) bool {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Past the PROXY header's 5 s: a refused connection is closed by then.
	c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(c, header+"SSH-2.0-probe\r\n"); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "SSH-2.0-")
}
