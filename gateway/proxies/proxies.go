// Package proxies finds the client's address of a connection or request
// that reached the gateway through proxies the operator trusts: from the
// X-Forwarded-For header that HTTP reverse proxies append to (Client), or
// from the PROXY protocol header that TCP load balancers send before the
// client's bytes (ProtocolListener). It trusts nobody unless told to,
// reads only what trusted proxies wrote, and never logs.
//
// Only X-Forwarded-For is read. Forwarded (RFC 7239) is not: the usual
// proxies (nginx, HAProxy, cloud load balancers) append to one of the two
// and pass the other through from the client untouched, so reading both
// would let any client name its own address, and which one a deployment's
// proxy maintains is not something the gateway can tell.
package proxies

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// Bounds on what Client reads. The header is walked from the right, so
// these bound the work per request however long the part the client wrote
// (net/http's MaxHeaderBytes bounds the whole header): at most MaxHops
// entries, of at most MaxEntryBytes each (spaces included), that is about
// 1 KiB from the header's end. Past either bound the walk stops and the
// client is the TCP peer. A longer header does not change the answer by
// itself: the entries the client put on the left are never reached while
// a valid untrusted entry stands to their right.
const (
	MaxHops       = 16
	MaxEntryBytes = 64
)

// MaxPrefixes bounds the trusted list, which Contains searches in order.
const MaxPrefixes = 256

// Trusted is the set of reverse proxies whose X-Forwarded-For is believed.
// The zero value and nil trust nobody. It is read-only after New and safe
// for concurrent use.
type Trusted struct {
	prefixes []netip.Prefix
}

// ParsePrefix reads one trusted_proxies entry: a network in CIDR
// notation ("10.0.0.0/8", "2001:db8::/32") or one address ("127.0.0.1",
// "::1"), the same as its /32 or /128. It refuses what New refuses.
func ParsePrefix(s string) (netip.Prefix, error) {
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return p, fmt.Errorf("want an address or a network such as 10.0.0.0/8")
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return p, fmt.Errorf("want an address or a network such as 10.0.0.0/8")
		}
		if a.Zone() != "" {
			return p, errors.New("an address with a zone; write it without one")
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	return p, check(p)
}

// check refuses a prefix that is invalid, names an IPv4 network in its
// IPv6-mapped form (peers are compared unmapped), has host bits set (was
// 10.0.0.1/8 meant as 10.0.0.0/8 or as 10.0.0.1/32?) or is a /0, which
// would let every client name its own address.
func check(p netip.Prefix) error {
	switch {
	case !p.IsValid():
		return errors.New("not a valid network")
	case p.Addr().Is4In6():
		return fmt.Errorf("an IPv4-mapped IPv6 network; write it as IPv4 (%s)", netip.PrefixFrom(p.Addr().Unmap(), max(0, p.Bits()-96)))
	case p.Bits() == 0:
		return errors.New("trusts every address, so any client could name its own address; list the proxies' addresses")
	case p.Masked() != p:
		return fmt.Errorf("host bits set; write %s for the network or %s for the one address",
			p.Masked(), netip.PrefixFrom(p.Addr(), p.Addr().BitLen()))
	}
	return nil
}

// New returns the set of the given proxies, refusing any prefix that
// ParsePrefix would refuse. No prefixes trust nobody.
func New(prefixes []netip.Prefix) (*Trusted, error) {
	if len(prefixes) > MaxPrefixes {
		return nil, fmt.Errorf("proxies: %d trusted proxies, at most %d", len(prefixes), MaxPrefixes)
	}
	for i, p := range prefixes {
		if err := check(p); err != nil {
			return nil, fmt.Errorf("proxies: trusted proxy %d (%s): %w", i, p, err)
		}
	}
	return &Trusted{prefixes: append([]netip.Prefix(nil), prefixes...)}, nil
}

// Contains reports whether a is a trusted proxy's address. An
// IPv4-mapped IPv6 address counts as its IPv4 address; zones are ignored.
func (t *Trusted) Contains(a netip.Addr) bool {
	if t == nil {
		return false
	}
	a = a.WithZone("").Unmap()
	for _, p := range t.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Client returns the client's address of a request from the TCP peer
// peer with header h, and whether it differs from the peer's: when the
// peer is a trusted proxy, it is the rightmost X-Forwarded-For entry that
// is not a trusted proxy (entries to its left were written by that client
// and are never read), or the leftmost entry when all of them are trusted
// proxies. Several X-Forwarded-For lines are read as one list, in order.
// A peer that is not trusted is the client whatever its headers say. A
// missing or empty header, an entry that is not an address (with or
// without a port: "192.0.2.7", "192.0.2.7:443", "2001:db8::7",
// "[2001:db8::7]:443"), or more than MaxHops entries to read leave the
// peer as the client. The address returned is unmapped and has no zone.
func (t *Trusted) Client(peer netip.Addr, h http.Header) (netip.Addr, bool) {
	if !t.Contains(peer) {
		return peer, false
	}
	if a, ok := t.walk(h.Values("X-Forwarded-For")); ok {
		return a, true
	}
	return peer, false
}

// walk reads X-Forwarded-For lines from the right; see Client.
func (t *Trusted) walk(lines []string) (netip.Addr, bool) {
	var leftmost netip.Addr // the leftmost entry read so far, all trusted
	hops := 0
	for i := len(lines) - 1; i >= 0; i-- {
		v := lines[i]
		for end := len(v); ; {
			if hops == MaxHops {
				return netip.Addr{}, false
			}
			hops++
			// The entry's comma is at most MaxEntryBytes before end.
			start := max(0, end-MaxEntryBytes-1)
			comma := strings.LastIndexByte(v[start:end], ',')
			var entry string
			if comma < 0 {
				if start > 0 {
					return netip.Addr{}, false // longer than MaxEntryBytes
				}
				entry = v[:end]
			} else {
				comma += start
				entry = v[comma+1 : end]
			}
			if entry = strings.Trim(entry, " \t"); entry != "" {
				a, ok := parseEntry(entry)
				if !ok {
					return netip.Addr{}, false
				}
				if !t.Contains(a) {
					return a, true
				}
				leftmost = a
			}
			if comma < 0 {
				break
			}
			end = comma
		}
	}
	return leftmost, leftmost.IsValid()
}

// parseEntry reads one X-Forwarded-For entry: an IPv4 or IPv6 address,
// optionally with a port (IPv6 then in brackets). Zones are refused: no
// proxy reports a client by its link-local address. The address is
// returned unmapped.
func parseEntry(s string) (netip.Addr, bool) {
	host, port, bracketed := s, "", strings.HasPrefix(s, "[")
	if bracketed {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return netip.Addr{}, false
		}
		host, port = s[1:end], s[end+1:]
	} else if i := strings.IndexByte(s, ':'); i >= 0 && strings.Count(s, ":") == 1 {
		host, port = s[:i], s[i:] // IPv4 and a port; IPv6 has at least two colons
	}
	if port != "" && !validPort(port) {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" || (bracketed && !a.Is6()) {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// validPort reports whether s is ":" and a decimal port, 0 to 65535.
func validPort(s string) bool {
	d, ok := strings.CutPrefix(s, ":")
	_, err := strconv.ParseUint(d, 10, 16)
	return ok && err == nil
}
