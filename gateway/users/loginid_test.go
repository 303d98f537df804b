package users

import (
	"errors"
	"strings"
	"testing"
)

func TestLoginID(t *testing.T) {
	var h [32]byte
	for i := range h {
		h[i] = byte(i * 7)
	}
	id := LoginID(h)
	if got, want := len(id), 64; got != want {
		t.Fatalf("len(LoginID): got %d, want %d", got, want)
	}
	if got, err := ParseLoginID(id); err != nil || got != h {
		t.Fatalf("ParseLoginID(LoginID(h)): got %x, %v; want %x", got, err, h)
	}
	for _, bad := range []string{"", id[:62], id + "00", strings.ToUpper(id), "zz" + id[2:], " " + id[1:]} {
		if _, err := ParseLoginID(bad); !errors.Is(err, ErrMalformedLoginID) {
			t.Errorf("ParseLoginID(%q): got %v, want ErrMalformedLoginID", bad, err)
		}
	}
}

// FuzzParseLoginID: whatever a certificate's extension holds, ParseLoginID
// accepts only what LoginID writes.
func FuzzParseLoginID(f *testing.F) {
	f.Add(LoginID([32]byte{1, 2, 3}))
	f.Add(strings.ToUpper(LoginID([32]byte{0xab})))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseLoginID(s)
		if err == nil && LoginID(h) != s {
			t.Errorf("ParseLoginID(%q) accepted what LoginID writes as %q", s, LoginID(h))
		}
	})
}
