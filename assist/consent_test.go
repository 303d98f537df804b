package assist

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestParseLink(t *testing.T) {
	for _, tc := range []struct {
		link, base, token string
		ok                bool
	}{
		{"https://gw.example.com/c/abc", "https://gw.example.com", "abc", true},
		{"https://gw.example.com:8443/c/abc#sha256=00", "https://gw.example.com:8443", "abc", true},
		{" https://gw.example.com/support/c/abc\n", "https://gw.example.com/support", "abc", true},
		{"http://gw.example.com/c/abc", "", "", false},
		{"https://gw.example.com/c/", "", "", false},
		{"https://gw.example.com/c/abc/def", "", "", false},
		{"https:///c/abc", "", "", false},
		{"gw.example.com/c/abc", "", "", false},
	} {
		base, token, err := ParseLink(tc.link)
		if (err == nil) != tc.ok || base != tc.base || token != tc.token {
			t.Errorf("ParseLink(%q): got %q, %q, %v; want %q, %q, ok=%v", tc.link, base, token, err, tc.base, tc.token, tc.ok)
		}
	}
}

// FuzzParseLink: a link comes from the customer's clipboard; whatever it
// is, a parsed one names an https base without a query and a bare token.
func FuzzParseLink(f *testing.F) {
	f.Add("https://gw.example.com/c/abc")
	f.Add("https://gw.example.com:8443/x/c/abc#sha256=00")
	f.Add("https://[::1]:8443/c/abc?x=1")
	f.Add("https://gw/c/abc#sha256=aa&handoff=b%20c&handoff=d")
	f.Fuzz(func(t *testing.T, link string) {
		// '#' may stand inside a fragment; '&' separates its parameters
		// and reaches a value only percent-encoded.
		if pin, code := LinkParams(link); strings.Contains(pin+code, "&") && !strings.Contains(link, "%") {
			t.Fatalf("LinkParams(%q) = %q, %q: a separator leaked into a value", link, pin, code)
		}
		base, token, err := ParseLink(link)
		if err != nil {
			return
		}
		if len(base) < len("https://x") || base[:8] != "https://" || token == "" {
			t.Fatalf("ParseLink(%q) = %q, %q", link, base, token)
		}
		for _, c := range token {
			if c == '/' || c == '?' || c == '#' {
				t.Fatalf("token %q from %q", token, link)
			}
		}
	})
}

// TestConsentSkew: the gateway's clock, from its Date header, is known to
// the second.
func TestConsentSkew(t *testing.T) {
	ahead := time.Hour
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", time.Now().Add(ahead).UTC().Format(http.TimeFormat))
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"state":"requested"}`))
	}))
	defer srv.Close()
	cs, err := Open(context.Background(), srv.Client(), srv.URL+"/c/token")
	if err != nil {
		t.Fatal(err)
	}
	if got := cs.Skew(); got < ahead-time.Second || got > ahead+time.Second {
		t.Errorf("skew %v, want %v to the second", got, ahead)
	}
}
