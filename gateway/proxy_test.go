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
	"sync"
	"testing"

	"supportgate/gateway"
	"supportgate/gateway/keys"
	"supportgate/gateway/proxies"
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

	n := 0
	login := func(base, from, xff string) (int, string) {
		t.Helper()
		n++
		return failLogin(t, e, base, from, xff, n)
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

// failLogin fails a sign-in as nobodyN from the loopback address from, to
// base (a proxy or the gateway), sending xff as X-Forwarded-For if not
// empty, and returns the answer's status and body.
func failLogin(t *testing.T, e *env, base, from, xff string, n int) (int, string) {
	t.Helper()
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

// limited reports whether a login's answer is the per-address rate limit.
func limited(code int, body string) bool {
	return code == http.StatusTooManyRequests && strings.Contains(body, "too many login attempts")
}

// TestBehindTCPLoadBalancer: with the gateway's listener wrapped by
// proxies.ProtocolListener for a TCP load balancer on 127.0.0.1 that
// passes TLS through and sends a PROXY protocol header, two customers
// whose connections to the balancer come from 127.0.0.2 and 127.0.0.3
// are rate-limited apart and audited with their own addresses; the
// balancer's address without a header is refused, and a client that
// connects directly from elsewhere is served as itself.
func TestBehindTCPLoadBalancer(t *testing.T) {
	e := newEnv(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lbs, err := proxies.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(e.g.Handler())
	srv.Listener.Close()
	srv.Listener = proxies.ProtocolListener(inner, lbs, 0)
	srv.TLS = e.mat.TLSConfig()
	srv.StartTLS()
	t.Cleanup(srv.Close)
	lb := "https://" + tcpBalancer(t, inner.Addr().String())

	for i := range 10 {
		if code, body := failLogin(t, e, lb, "127.0.0.2", "", i); code != http.StatusUnauthorized {
			t.Fatalf("A's attempt %d through the balancer: got %d %s, want 401", i+1, code, body)
		}
	}
	if code, body := failLogin(t, e, lb, "127.0.0.2", "", 10); !limited(code, body) {
		t.Fatalf("A's 11th attempt: got %d %s, want 429 too many login attempts", code, body)
	}
	if code, body := failLogin(t, e, lb, "127.0.0.3", "", 11); code != http.StatusUnauthorized {
		t.Fatalf("B's first attempt through the balancer: got %d %s, want 401", code, body)
	}
	if code, body := failLogin(t, e, srv.URL, "127.0.0.4", "", 12); code != http.StatusUnauthorized {
		t.Fatalf("direct attempt from 127.0.0.4: got %d %s, want 401", code, body)
	}
	// The balancer's own address without a header: refused before TLS.
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}
	c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, TLSClientConfig: &tls.Config{RootCAs: e.mat.CAPool()}}}
	if resp, err := c.Get(srv.URL + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("balancer's address without a PROXY header: got %d, want the connection refused", resp.StatusCode)
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

// tcpBalancer runs a TCP load balancer on 127.0.0.1 in front of target
// until the test ends: it passes each connection's bytes through
// untouched after a PROXY protocol v1 header naming the client.
func tcpBalancer(t *testing.T, target string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex // guards conns
		conns []net.Conn
	)
	track := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			track(c)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				up, err := dialer.Dial("tcp", target)
				if err != nil {
					return
				}
				track(up)
				defer up.Close()
				from, to := c.RemoteAddr().(*net.TCPAddr), c.LocalAddr().(*net.TCPAddr)
				if _, err := fmt.Fprintf(up, "PROXY TCP4 %s %s %d %d\r\n", from.IP, to.IP, from.Port, to.Port); err != nil {
					return
				}
				done := make(chan struct{})
				go func() {
					defer close(done)
					io.Copy(up, c)
					up.(*net.TCPConn).CloseWrite()
				}()
				io.Copy(c, up)
				c.Close()
				<-done
			}()
		}
	}()
	return ln.Addr().String()
}
