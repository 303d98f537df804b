package assist

import (
	"strings"
	"testing"
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
