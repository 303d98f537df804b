package main

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	if c, err := load(`{"org": "A"}`); err != nil || c.trusted != nil {
		t.Errorf("no trusted_proxies: got %v, %v; want none", c.trusted, err)
	}
	for _, tc := range []struct{ js, want string }{
		{`{"trusted_proxies": ["10.0.0.0/8", "proxy.example.com"]}`, `trusted_proxies[1] "proxy.example.com": want an address or a network`},
		{`{"trusted_proxies": ["10.0.0.1/8"]}`, `trusted_proxies[0] "10.0.0.1/8": host bits set`},
		{`{"trusted_proxies": ["0.0.0.0/0"]}`, `trusted_proxies[0] "0.0.0.0/0": trusts every address`},
		{`{"trusted_proxies": [""]}`, `trusted_proxies[0] ""`},
		{`{"trusted_proxies": "10.0.0.0/8"}`, `trusted_proxies`},
	} {
		if _, err := load(tc.js); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error with %q", tc.js, err, tc.want)
		}
	}
}

// TestServeTrustedProxies: serve's trusted_proxies reach the gateway: a
// login through a trusted proxy on 127.0.0.1 is audited with the address
// the proxy forwarded, and one from an untrusted 127.0.0.2 with its own.
func TestServeTrustedProxies(t *testing.T) {
	g := &gw{t: t, bin: gatewayBinary(t), data: filepath.Join(t.TempDir(), "data")}
	g.config = filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(g.config, []byte(`{"trusted_proxies": ["127.0.0.1"]}`), 0o600); err != nil {
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
	for _, from := range []string{"127.0.0.1", "127.0.0.2"} {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, TLSClientConfig: &tls.Config{RootCAs: pool}}}
		req, _ := http.NewRequest("POST", g.url+"/api/v1/login", strings.NewReader(`{"user": "nobody", "password": "wrong", "totp": "000000"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", "198.51.100.1, 203.0.113.7")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		c.CloseIdleConnections()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("login from %s: got %d, want 401", from, resp.StatusCode)
		}
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
	if got := strings.Join(remotes, " "); got != "203.0.113.7 127.0.0.2" {
		t.Errorf("login.failure remotes: got %q, want %q", got, "203.0.113.7 127.0.0.2")
	}
}
