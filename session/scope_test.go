package session

import (
	"errors"
	"testing"
)

func TestParseScopes(t *testing.T) {
	tests := []struct {
		in   string
		want string
		err  bool
	}{
		{"view", "view", false},
		{"chat,view", "view,chat", false},
		{"view,chat,shell,tunnel:80", "view,chat,shell,tunnel:80", false},
		{"tunnel:443,80,view", "view,tunnel:80,443", false},
		{"tunnel:80,tunnel:22", "tunnel:22,80", false},
		{"view,view", "view", false},
		{"", "", true},
		{"view,,chat", "", true},
		{"root", "", true},
		{"tunnel", "", true},
		{"tunnel:", "", true},
		{"tunnel:0", "", true},
		{"tunnel:65536", "", true},
		{"tunnel:-1", "", true},
		{"view:80", "", true},
		{"80", "", true},
	}
	for _, tt := range tests {
		got, err := ParseScopes(tt.in)
		if (err != nil) != tt.err {
			t.Errorf("ParseScopes(%q) error %v, want error %v", tt.in, err, tt.err)
			continue
		}
		if err != nil && !errors.Is(err, ErrBadScope) {
			t.Errorf("ParseScopes(%q) error %v is not ErrBadScope", tt.in, err)
		}
		if err == nil && got.String() != tt.want {
			t.Errorf("ParseScopes(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestScopeSets(t *testing.T) {
	all, _ := ParseScopes("view,chat,tunnel:80,443")
	some, _ := ParseScopes("chat,tunnel:443")
	other, _ := ParseScopes("tunnel:22")
	if !some.Within(all) || all.Within(some) || other.Within(all) {
		t.Fatal("Within is wrong")
	}
	if got := all.Intersect(some).String(); got != "chat,tunnel:443" {
		t.Fatalf("Intersect = %q", got)
	}
	if !all.AllowsPort(80) || all.AllowsPort(22) {
		t.Fatal("AllowsPort is wrong")
	}
}

func FuzzParseScopes(f *testing.F) {
	for _, s := range []string{"view,chat", "tunnel:80,443,view", "shell", "tunnel:1,2,3,files"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := ParseScopes(s)
		if err != nil {
			return
		}
		// What parses must round-trip through its own rendering.
		again, err := ParseScopes(sc.String())
		if err != nil || again.String() != sc.String() {
			t.Fatalf("round trip of %q: %q, %v", s, again, err)
		}
	})
}

func FuzzParseToken(f *testing.F) {
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("../../etc/passwd")
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := ParseToken(s); err == nil && len(s) != TokenLen {
			t.Fatalf("accepted %q", s)
		}
	})
}
