package session

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Kind names what a scope lets the agent do.
type Kind string

// The scope kinds of DESIGN.md section 2.
const (
	View   Kind = "view"   // screen share from the customer's browser
	Chat   Kind = "chat"   // text chat
	Shell  Kind = "shell"  // SSH shell over the tunnel
	Tunnel Kind = "tunnel" // TCP forwards to the listed ports on the customer's machine
	Files  Kind = "files"  // file transfer (later)
)

var kinds = []Kind{View, Chat, Shell, Tunnel, Files}

// Limits on what a scope list may hold.
const (
	MaxPorts       = 32  // ports in one tunnel scope
	maxScopeString = 512 // bytes in a textual scope list
)

// Scope is one permission the customer grants. Ports is set only for Tunnel
// and is sorted and free of duplicates.
type Scope struct {
	Kind  Kind
	Ports []uint16
}

// String renders the scope as it is written on the command line:
// "view" or "tunnel:80,443".
func (s Scope) String() string {
	if s.Kind != Tunnel {
		return string(s.Kind)
	}
	var b strings.Builder
	b.WriteString("tunnel:")
	for i, p := range s.Ports {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(p)))
	}
	return b.String()
}

// Scopes is a set of scopes with at most one entry per kind, in the order of
// kinds above.
type Scopes []Scope

// ParseScopes parses "view,chat,shell,tunnel:80,443". A bare number after a
// tunnel entry is another port of that tunnel. Duplicates merge; unknown
// kinds, bad ports and empty lists are errors.
func ParseScopes(text string) (Scopes, error) {
	if len(text) > maxScopeString {
		return nil, fmt.Errorf("%w: scope list longer than %d bytes", ErrBadScope, maxScopeString)
	}
	var items []string
	inTunnel := false
	for _, f := range strings.Split(text, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			return nil, fmt.Errorf("%w: empty entry in %q", ErrBadScope, text)
		}
		if inTunnel && isDigits(f) {
			items[len(items)-1] += "," + f
			continue
		}
		inTunnel = strings.HasPrefix(f, "tunnel:")
		items = append(items, f)
	}
	return ParseScopeList(items)
}

// ParseScopeList parses scopes given one per element, as in JSON
// ["view","tunnel:80,443"].
func ParseScopeList(items []string) (Scopes, error) {
	if len(items) == 0 {
		return nil, fmt.Errorf("%w: no scopes", ErrBadScope)
	}
	if len(items) > 16 {
		return nil, fmt.Errorf("%w: more than 16 entries", ErrBadScope)
	}
	var out Scopes
	for _, it := range items {
		sc, err := parseScope(it)
		if err != nil {
			return nil, err
		}
		out = out.with(sc)
	}
	return out, nil
}

func parseScope(item string) (Scope, error) {
	name, ports, hasPorts := strings.Cut(strings.TrimSpace(item), ":")
	k := Kind(name)
	if !slices.Contains(kinds, k) {
		return Scope{}, fmt.Errorf("%w: unknown scope %q", ErrBadScope, truncate(name, 32))
	}
	if k != Tunnel {
		if hasPorts {
			return Scope{}, fmt.Errorf("%w: scope %q takes no ports", ErrBadScope, name)
		}
		return Scope{Kind: k}, nil
	}
	if !hasPorts || ports == "" {
		return Scope{}, fmt.Errorf("%w: tunnel needs ports, as tunnel:80,443", ErrBadScope)
	}
	sc := Scope{Kind: Tunnel}
	for _, p := range strings.Split(ports, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(p), 10, 16)
		if err != nil || n == 0 {
			return Scope{}, fmt.Errorf("%w: bad tunnel port %q", ErrBadScope, truncate(p, 16))
		}
		sc.Ports = append(sc.Ports, uint16(n))
	}
	slices.Sort(sc.Ports)
	sc.Ports = slices.Compact(sc.Ports)
	if len(sc.Ports) > MaxPorts {
		return Scope{}, fmt.Errorf("%w: more than %d tunnel ports", ErrBadScope, MaxPorts)
	}
	return sc, nil
}

// with returns the set with sc merged in, keeping kind order.
func (s Scopes) with(sc Scope) Scopes {
	out := slices.Clone(s)
	for i := range out {
		if out[i].Kind == sc.Kind {
			ports := append(slices.Clone(out[i].Ports), sc.Ports...)
			slices.Sort(ports)
			out[i].Ports = slices.Compact(ports)
			return out
		}
	}
	out = append(out, sc)
	slices.SortFunc(out, func(a, b Scope) int {
		return slices.Index(kinds, a.Kind) - slices.Index(kinds, b.Kind)
	})
	return out
}

// Has reports whether the set grants kind k.
func (s Scopes) Has(k Kind) bool {
	for _, sc := range s {
		if sc.Kind == k {
			return true
		}
	}
	return false
}

// AllowsPort reports whether a tunnel to port p is granted.
func (s Scopes) AllowsPort(p uint16) bool {
	for _, sc := range s {
		if sc.Kind == Tunnel {
			_, ok := slices.BinarySearch(sc.Ports, p)
			return ok
		}
	}
	return false
}

// Within reports whether every scope and port of s is also in outer.
func (s Scopes) Within(outer Scopes) bool {
	for _, sc := range s {
		if !outer.Has(sc.Kind) {
			return false
		}
		for _, p := range sc.Ports {
			if !outer.AllowsPort(p) {
				return false
			}
		}
	}
	return true
}

// Intersect returns what both sets grant.
func (s Scopes) Intersect(other Scopes) Scopes {
	var out Scopes
	for _, sc := range s {
		if !other.Has(sc.Kind) {
			continue
		}
		if sc.Kind != Tunnel {
			out = append(out, Scope{Kind: sc.Kind})
			continue
		}
		var ports []uint16
		for _, p := range sc.Ports {
			if other.AllowsPort(p) {
				ports = append(ports, p)
			}
		}
		if len(ports) > 0 {
			out = append(out, Scope{Kind: Tunnel, Ports: ports})
		}
	}
	return out
}

// Strings renders each scope, for JSON and display.
func (s Scopes) Strings() []string {
	out := make([]string, len(s))
	for i, sc := range s {
		out[i] = sc.String()
	}
	return out
}

// String renders the set as the command line writes it.
func (s Scopes) String() string { return strings.Join(s.Strings(), ",") }

// MarshalJSON writes the set as a list of strings.
func (s Scopes) MarshalJSON() ([]byte, error) { return json.Marshal(s.Strings()) }

// UnmarshalJSON reads a list of scope strings.
func (s *Scopes) UnmarshalJSON(b []byte) error {
	var items []string
	if err := json.Unmarshal(b, &items); err != nil {
		return fmt.Errorf("%w: scopes must be a list of strings", ErrBadScope)
	}
	if len(items) == 0 {
		*s = nil
		return nil
	}
	v, err := ParseScopeList(items)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
