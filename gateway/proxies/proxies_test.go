package proxies

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func mustTrust(t testing.TB, entries ...string) *Trusted {
	t.Helper()
	var ps []netip.Prefix
	for _, e := range entries {
		p, err := ParsePrefix(e)
		if err != nil {
			t.Fatalf("ParsePrefix(%q): %v", e, err)
		}
		ps = append(ps, p)
	}
	tr, err := New(ps)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestClient walks X-Forwarded-For behind proxies at 10.0.0.0/8,
// 127.0.0.1 and 2001:db8:f::/48.
func TestClient(t *testing.T) {
	tr := mustTrust(t, "10.0.0.0/8", "127.0.0.1", "2001:db8:f::/48")
	for _, c := range []struct {
		name string
		peer string
		xff  []string // header lines; nil means no header
		want string   // the client; "" means the peer
	}{
		{name: "untrusted peer ignores header", peer: "198.51.100.9", xff: []string{"203.0.113.7"}},
		{name: "untrusted peer ignores trusted-looking header", peer: "198.51.100.9", xff: []string{"10.0.0.1"}},
		{name: "untrusted IPv6 peer", peer: "2001:db8:1::9", xff: []string{"203.0.113.7"}},
		{name: "no header", peer: "10.0.0.1"},
		{name: "empty header", peer: "10.0.0.1", xff: []string{""}},
		{name: "only separators", peer: "10.0.0.1", xff: []string{" , ,\t"}},
		{name: "one hop", peer: "10.0.0.1", xff: []string{"203.0.113.7"}, want: "203.0.113.7"},
		{name: "spaces and tabs", peer: "10.0.0.1", xff: []string{" \t203.0.113.7 \t"}, want: "203.0.113.7"},
		{name: "spoofed leftmost", peer: "10.0.0.1", xff: []string{"1.2.3.4, 203.0.113.7"}, want: "203.0.113.7"},
		{name: "spoofed leftmost trusted-looking", peer: "10.0.0.1", xff: []string{"10.9.9.9, 203.0.113.7"}, want: "203.0.113.7"},
		{name: "spoofed garbage left of the client", peer: "10.0.0.1", xff: []string{"<script>, ::::, 999.1.1.1, 203.0.113.7"}, want: "203.0.113.7"},
		{name: "spoofed long left part", peer: "10.0.0.1", xff: []string{strings.Repeat("1.2.3.4,", 5000) + strings.Repeat("x", 10000) + ",203.0.113.7"}, want: "203.0.113.7"},
		{name: "chain of trusted proxies", peer: "127.0.0.1", xff: []string{"1.2.3.4, 203.0.113.7, 10.1.2.3, 10.4.5.6"}, want: "203.0.113.7"},
		{name: "chain over lines", peer: "127.0.0.1", xff: []string{"1.2.3.4, 203.0.113.7", "10.1.2.3", "10.4.5.6"}, want: "203.0.113.7"},
		{name: "spoof on its own line", peer: "10.0.0.1", xff: []string{"1.2.3.4", "203.0.113.7"}, want: "203.0.113.7"},
		{name: "all trusted takes leftmost", peer: "10.0.0.1", xff: []string{"10.7.7.7, 127.0.0.1"}, want: "10.7.7.7"},
		{name: "IPv4 with port", peer: "10.0.0.1", xff: []string{"203.0.113.7:50123"}, want: "203.0.113.7"},
		{name: "IPv6", peer: "10.0.0.1", xff: []string{"2001:db8:1::7"}, want: "2001:db8:1::7"},
		{name: "IPv6 bracketed", peer: "10.0.0.1", xff: []string{"[2001:db8:1::7]"}, want: "2001:db8:1::7"},
		{name: "IPv6 with port", peer: "10.0.0.1", xff: []string{"[2001:db8:1::7]:443"}, want: "2001:db8:1::7"},
		{name: "IPv6 trusted proxy peer", peer: "2001:db8:f::1", xff: []string{"203.0.113.7, 2001:db8:f:1::2"}, want: "203.0.113.7"},
		{name: "IPv6 zone on peer", peer: "2001:db8:f::1%eth0", xff: []string{"203.0.113.7"}, want: "203.0.113.7"},
		{name: "IPv4-mapped peer", peer: "::ffff:10.0.0.1", xff: []string{"203.0.113.7"}, want: "203.0.113.7"},
		{name: "IPv4-mapped entry unmapped", peer: "10.0.0.1", xff: []string{"::ffff:203.0.113.7"}, want: "203.0.113.7"},
		{name: "IPv4-mapped trusted entry skipped", peer: "10.0.0.1", xff: []string{"203.0.113.7, ::ffff:10.2.2.2"}, want: "203.0.113.7"},
		{name: "empty entries skipped", peer: "10.0.0.1", xff: []string{"203.0.113.7,, ,10.2.2.2,"}, want: "203.0.113.7"},
		{name: "garbage", peer: "10.0.0.1", xff: []string{"not an address"}},
		{name: "unknown", peer: "10.0.0.1", xff: []string{"unknown"}},
		{name: "garbage right of client", peer: "10.0.0.1", xff: []string{"203.0.113.7, junk"}},
		{name: "garbage between trusted", peer: "10.0.0.1", xff: []string{"203.0.113.7, junk, 10.2.2.2"}},
		{name: "hostname", peer: "10.0.0.1", xff: []string{"client.example.com"}},
		{name: "IPv6 zone in entry", peer: "10.0.0.1", xff: []string{"fe80::1%eth0"}},
		{name: "bracketed IPv4", peer: "10.0.0.1", xff: []string{"[203.0.113.7]"}},
		{name: "unbracketed IPv6 port-like", peer: "10.0.0.1", xff: []string{"2001:db8:1::7:443"}, want: "2001:db8:1::7:443"},
		{name: "bad port", peer: "10.0.0.1", xff: []string{"203.0.113.7:99999"}},
		{name: "empty port", peer: "10.0.0.1", xff: []string{"203.0.113.7:"}},
		{name: "bracket unclosed", peer: "10.0.0.1", xff: []string{"[2001:db8::7"}},
		{name: "CIDR", peer: "10.0.0.1", xff: []string{"203.0.113.0/24"}},
		{name: "Forwarded syntax", peer: "10.0.0.1", xff: []string{"for=203.0.113.7"}},
		{name: "entry too long", peer: "10.0.0.1", xff: []string{strings.Repeat(" ", MaxEntryBytes) + "203.0.113.7"}},
		{name: "entry at the bound", peer: "10.0.0.1", xff: []string{"1.1.1.1," + strings.Repeat(" ", MaxEntryBytes-len("203.0.113.7")) + "203.0.113.7"}, want: "203.0.113.7"},
		{name: "hops at the bound", peer: "10.0.0.1", xff: []string{"1.1.1.1, 203.0.113.7" + strings.Repeat(", 10.2.2.2", MaxHops-1)}, want: "203.0.113.7"},
		{name: "too many trusted hops", peer: "10.0.0.1", xff: []string{"203.0.113.7" + strings.Repeat(", 10.2.2.2", MaxHops)}},
		{name: "too many lines", peer: "10.0.0.1", xff: append([]string{"203.0.113.7"}, strings.Split(strings.Repeat("10.2.2.2,", MaxHops), ",")[:MaxHops]...)},
	} {
		t.Run(c.name, func(t *testing.T) {
			peer := netip.MustParseAddr(c.peer)
			h := http.Header{}
			for _, l := range c.xff {
				h.Add("X-Forwarded-For", l)
			}
			got, ok := tr.Client(peer, h)
			want, wantOK := peer, false
			if c.want != "" {
				want, wantOK = netip.MustParseAddr(c.want), true
			}
			if got != want || ok != wantOK {
				t.Errorf("Client(%s, %q): got %v, %v; want %v, %v", c.peer, c.xff, got, ok, want, wantOK)
			}
		})
	}
}

// TestTrustNobody: nil and empty sets take the peer whatever the header.
func TestTrustNobody(t *testing.T) {
	empty, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"X-Forwarded-For": {"203.0.113.7"}}
	for _, tr := range []*Trusted{nil, empty, {}} {
		peer := netip.MustParseAddr("127.0.0.1")
		if got, ok := tr.Client(peer, h); got != peer || ok {
			t.Errorf("Client: got %v, %v; want the peer", got, ok)
		}
	}
}

func TestParsePrefix(t *testing.T) {
	for _, c := range []struct {
		in, want string // want: the prefix, or "!" and part of the error
	}{
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"127.0.0.1", "127.0.0.1/32"},
		{"127.0.0.1/32", "127.0.0.1/32"},
		{"::1", "::1/128"},
		{"2001:db8::/32", "2001:db8::/32"},
		{"10.0.0.1/8", "!write 10.0.0.0/8 for the network or 10.0.0.1/32"},
		{"0.0.0.0/0", "!trusts every address"},
		{"::/0", "!trusts every address"},
		{"::ffff:10.0.0.0/104", "!write it as IPv4 (10.0.0.0/8)"},
		{"::ffff:10.0.0.1", "!write it as IPv4 (10.0.0.1/32)"},
		{"fe80::1%eth0", "!zone"},
		{"10.0.0.0/33", "!want an address or a network"},
		{"proxy.example.com", "!want an address or a network"},
		{"", "!want an address or a network"},
		{" 10.0.0.1", "!want an address or a network"},
	} {
		p, err := ParsePrefix(c.in)
		if want, ok := strings.CutPrefix(c.want, "!"); ok {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("ParsePrefix(%q): got %v, %v; want an error with %q", c.in, p, err, want)
			}
			continue
		}
		if err != nil || p.String() != c.want {
			t.Errorf("ParsePrefix(%q): got %v, %v; want %s", c.in, p, err, c.want)
		}
	}
}

func TestNewRefuses(t *testing.T) {
	for _, ps := range [][]netip.Prefix{
		{netip.Prefix{}},
		{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("10.0.0.1/8")},
		{netip.MustParsePrefix("0.0.0.0/0")},
		make([]netip.Prefix, MaxPrefixes+1),
	} {
		if _, err := New(ps); err == nil {
			t.Errorf("New(%v): got no error", ps)
		}
	}
}

// reference is Client's walk written plainly, without its bounds, and
// with the standard library's address parsers.
func reference(tr *Trusted, lines []string) (netip.Addr, bool) {
	var entries []string
	for _, l := range lines {
		entries = append(entries, strings.Split(l, ",")...)
	}
	var leftmost netip.Addr
	for i := len(entries) - 1; i >= 0; i-- {
		e := strings.Trim(entries[i], " \t")
		if e == "" {
			continue
		}
		a, err := netip.ParseAddr(e)
		if err != nil {
			ap, err2 := netip.ParseAddrPort(e)
			a, err = ap.Addr(), err2
			if in, ok := strings.CutPrefix(e, "["); ok && err != nil && strings.HasSuffix(in, "]") {
				if a, err = netip.ParseAddr(strings.TrimSuffix(in, "]")); err == nil && !a.Is6() {
					return netip.Addr{}, false
				}
			}
		}
		if err != nil || a.Zone() != "" {
			return netip.Addr{}, false
		}
		a = a.Unmap()
		if !tr.Contains(a) {
			return a, true
		}
		leftmost = a
	}
	return leftmost, leftmost.IsValid()
}

// FuzzClient: Client never panics, ignores untrusted peers, answers the
// peer or an address written in the header, and agrees with reference
// on headers within its bounds.
func FuzzClient(f *testing.F) {
	for _, s := range []string{
		"", "203.0.113.7", "1.2.3.4, 203.0.113.7, 10.1.2.3", "10.7.7.7, 127.0.0.1",
		"[2001:db8::7]:443", "2001:db8::7", "::ffff:10.2.2.2", "203.0.113.7:99999",
		"fe80::1%eth0", "[203.0.113.7]", "unknown", ",, ,", "203.0.113.7\n10.2.2.2",
		"for=203.0.113.7", "[::1", "1.2.3.4:", "1.2.3.4:080",
	} {
		f.Add(s, uint8(0))
		f.Add(s, uint8(1))
	}
	tr := mustTrust(f, "10.0.0.0/8", "127.0.0.1", "2001:db8:f::/48")
	peers := []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("198.51.100.9"), netip.MustParseAddr("2001:db8:f::1")}
	f.Fuzz(func(t *testing.T, header string, which uint8) {
		peer := peers[int(which)%len(peers)]
		lines := strings.Split(header, "\n") // one header line each
		h := http.Header{"X-Forwarded-For": lines}
		got, ok := tr.Client(peer, h)
		if !tr.Contains(peer) {
			if got != peer || ok {
				t.Fatalf("untrusted peer %v: got %v, %v", peer, got, ok)
			}
			return
		}
		if !ok {
			if got != peer {
				t.Fatalf("got %v, false; want the peer %v", got, peer)
			}
		} else if !got.IsValid() || got.Zone() != "" || got.Is4In6() {
			t.Fatalf("got %v, want a plain address", got)
		}
		n := 0
		for _, l := range lines {
			for e := range strings.SplitSeq(l, ",") {
				if len(e) > MaxEntryBytes {
					return // beyond the bounds the walk may stop early
				}
				n++
			}
		}
		if n > MaxHops {
			return
		}
		want, wantOK := reference(tr, lines)
		if !wantOK {
			want = peer
		}
		if got != want || ok != wantOK {
			t.Fatalf("header %q: got %v, %v; reference says %v, %v", header, got, ok, want, wantOK)
		}
	})
}
