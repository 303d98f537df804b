package gateway

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"supportgate/gateway/proxies"
)

// TestOnlyClientAddrReadsRemoteAddr: every user of the client's address
// (limits, lockouts, audit, presence) asks clientAddr, which knows about
// trusted proxies; a handler reading r.RemoteAddr itself would see the
// proxy.
func TestOnlyClientAddrReadsRemoteAddr(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f == "client.go" || strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "RemoteAddr") {
			t.Errorf("%s reads RemoteAddr; ask clientAddr(r) for the client's address", f)
		}
	}
}

// TestClientAddr: without trusted proxies, or from an untrusted peer,
// the client is the TCP peer exactly as net/http reports it; from a
// trusted one, the address it forwarded.
func TestClientAddr(t *testing.T) {
	trusted, err := proxies.New([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		proxies *proxies.Trusted
		remote  string
		xff     string
		want    string
	}{
		{nil, "10.0.0.1:4431", "203.0.113.7", "10.0.0.1"},
		{nil, "[fe80::1%eth0]:4431", "", "fe80::1%eth0"},
		{nil, "not an address", "", "not an address"},
		{trusted, "198.51.100.9:4431", "203.0.113.7", "198.51.100.9"},
		{trusted, "10.0.0.1:4431", "203.0.113.7", "203.0.113.7"},
		{trusted, "10.0.0.1:4431", "1.2.3.4, [2001:db8::7]:443", "2001:db8::7"},
		{trusted, "10.0.0.1:4431", "garbage", "10.0.0.1"},
		{trusted, "10.0.0.1:4431", "", "10.0.0.1"},
		{trusted, "not an address", "203.0.113.7", "not an address"},
	} {
		g := &Gateway{proxies: c.proxies}
		var got string
		h := g.withClient(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = clientAddr(r) }))
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		if got != c.want {
			t.Errorf("clientAddr (trusted %v, peer %q, X-Forwarded-For %q): got %q, want %q", c.proxies != nil, c.remote, c.xff, got, c.want)
		}
	}
}
