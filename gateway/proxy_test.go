package gateway_test

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"supportgate/gateway"
	"supportgate/gateway/keys"
	"supportgate/gateway/sqlite"
)

// TestBehindReverseProxy: behind a real httputil.ReverseProxy on
// 127.0.0.1, which the gateway trusts, two customers whose connections
// to the proxy come from 127.0.0.2 and 127.0.0.3 are rate-limited apart
// and the audit log names each one's address, whatever X-Forwarded-For
// they send themselves; a client that reaches the gateway directly from
// an untrusted address cannot name another address with the header.
func TestBehindReverseProxy(t *testing.T) {
	e := newEnvWith(t, func(c *gateway.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	target, err := url.Parse(e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	// The proxy appends its client's address to the X-Forwarded-For it
	// was sent, as nginx's $proxy_add_x_forwarded_for and HAProxy's
	// option forwardfor do, and connects to the gateway from 127.0.0.1.
	toGateway := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
			pr.SetXForwarded()
		},
		Transport: &http.Transport{DialContext: toGateway.DialContext, TLSClientConfig: &tls.Config{RootCAs: e.mat.CAPool()}},
	}
	proxy := httptest.NewServer(rp)
	t.Cleanup(proxy.Close)

	// login fails a sign-in from the loopback address from, to base (the
	// proxy or the gateway), sending xff as X-Forwarded-For if not empty.
	n := 0
	login := func(base, from, xff string) (int, string) {
		t.Helper()
		n++
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, TLSClientConfig: &tls.Config{RootCAs: e.mat.CAPool()}}}
		defer c.CloseIdleConnections()
		body, _ := json.Marshal(map[string]string{"user": fmt.Sprintf("nobody%d", n), "password": "wrong", "totp": "000000"})
		req, err := http.NewRequest("POST", base+"/api/v1/login", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data)
	}
	limited := func(code int, body string) bool {
		return code == http.StatusTooManyRequests && strings.Contains(body, "too many login attempts")
	}

	// Customer A uses up its address's login attempts (10), each time
	// claiming to be customer B.
	for i := range 10 {
		if code, body := login(proxy.URL, "127.0.0.2", "127.0.0.3"); code != http.StatusUnauthorized {
			t.Fatalf("A's attempt %d through the proxy: got %d %s, want 401", i+1, code, body)
		}
	}
	if code, body := login(proxy.URL, "127.0.0.2", "127.0.0.3"); !limited(code, body) {
		t.Fatalf("A's 11th attempt: got %d %s, want 429 too many login attempts", code, body)
	}
	// Customer B, behind the same proxy, is not throttled by A's failures.
	if code, body := login(proxy.URL, "127.0.0.3", ""); code != http.StatusUnauthorized {
		t.Fatalf("B's first attempt through the proxy: got %d %s, want 401", code, body)
	}
	// A client reaching the gateway directly from an address that is not
	// a trusted proxy is itself, whatever the header says.
	if code, body := login(e.srv.URL, "127.0.0.4", "127.0.0.5"); code != http.StatusUnauthorized {
		t.Fatalf("direct attempt from 127.0.0.4: got %d %s, want 401", code, body)
	}

	count := map[string]int{}
	for _, r := range e.auditOf("login.failure") {
		count[r.Remote]++
	}
	want := map[string]int{"127.0.0.2": 10, "127.0.0.3": 1, "127.0.0.4": 1}
	if fmt.Sprint(count) != fmt.Sprint(want) {
		t.Errorf("login.failure remotes: got %v, want %v", count, want)
	}
}

// TestNewRefusesBadTrustedProxies: a trusted proxy list that would let
// every client name its own address, or is ambiguous, stops New.
func TestNewRefusesBadTrustedProxies(t *testing.T) {
	dir := t.TempDir()
	mat, _, err := keys.LoadOrCreate(filepath.Join(dir, "data"), keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(filepath.Join(dir, "test.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, c := range []struct{ prefix, want string }{
		{"0.0.0.0/0", "trusts every address"},
		{"10.0.0.1/8", "host bits set"},
	} {
		g, err := gateway.New(gateway.Config{Store: st, Keys: mat, PublicURL: "https://localhost:8443",
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix(c.prefix)}})
		if err == nil {
			g.Close()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New with trusted proxy %s: got %v, want an error with %q", c.prefix, err, c.want)
		}
	}
}
