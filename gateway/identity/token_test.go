package identity

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
)

func TestNewToken(t *testing.T) {
	for _, prefix := range []string{APITokenPrefix, ConsentTokenPrefix, EnrollTokenPrefix} {
		tok, h, err := NewToken(rand.Reader, prefix)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(tok), len(prefix)+43; got != want {
			t.Errorf("len(%s token): got %d, want %d", prefix, got, want)
		}
		if !strings.HasPrefix(tok, prefix) {
			t.Errorf("token %q: want prefix %q", tok, prefix)
		}
		if h != HashToken(tok) || !EqualTokenHash(h, HashToken(tok)) {
			t.Error("returned hash differs from HashToken(token)")
		}
		if err := ParseToken(prefix, tok); err != nil {
			t.Errorf("ParseToken(own token): %v", err)
		}
		other := APITokenPrefix
		if prefix == APITokenPrefix {
			other = ConsentTokenPrefix
		}
		if err := ParseToken(other, tok); !errors.Is(err, ErrMalformedToken) {
			t.Errorf("ParseToken(%s, %s token): got %v, want ErrMalformedToken", other, prefix, err)
		}
	}
	// Deterministic with a fixed reader.
	tok, _, err := NewToken(bytes.NewReader(make([]byte, 32)), "sgt_")
	if err != nil {
		t.Fatal(err)
	}
	if want := "sgt_" + strings.Repeat("A", 43); tok != want {
		t.Errorf("got %s, want %s", tok, want)
	}
	if _, _, err := NewToken(failReader{}, "sgt_"); err == nil {
		t.Error("NewToken(failing reader): got nil error, want one")
	}
	for _, p := range []string{"", "_", "sgt", "Sgt_", "1gt_", "s-t_", "abcdefghijklmnopq_"} {
		if _, _, err := NewToken(rand.Reader, p); err == nil {
			t.Errorf("NewToken(prefix %q): got nil error, want one", p)
		}
	}
}

func TestParseToken(t *testing.T) {
	body := strings.Repeat("A", 42) + "E"
	tests := []struct {
		name string
		s    string
		ok   bool
	}{
		{"ok", "sgt_" + body, true},
		{"url alphabet", "sgt_" + strings.Repeat("-_", 21) + "A", true},
		{"empty", "", false},
		{"prefix only", "sgt_", false},
		{"short", "sgt_" + body[1:], false},
		{"long", "sgt_" + body + "A", false},
		{"wrong prefix", "sgc_" + body, false},
		{"std alphabet", "sgt_" + strings.Repeat("+/", 21) + "A", false},
		{"padding", "sgt_" + body[:41] + "==", false},
		{"non-canonical last char", "sgt_" + strings.Repeat("A", 42) + "B", false},
		{"space", "sgt_" + body[:42] + " ", false},
		{"newline", "sgt_" + body[:42] + "\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ParseToken("sgt_", tt.s)
			if (err == nil) != tt.ok {
				t.Fatalf("got %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrMalformedToken) {
				t.Errorf("got %v, want ErrMalformedToken", err)
			}
			if err != nil && len(tt.s) > 4 && strings.Contains(err.Error(), tt.s[4:]) {
				t.Errorf("error %q echoes the token", err)
			}
		})
	}
}

func FuzzParseToken(f *testing.F) {
	tok, _, _ := NewToken(rand.Reader, APITokenPrefix)
	f.Add(APITokenPrefix, tok)
	f.Add(ConsentTokenPrefix, tok)
	f.Add("sgt_", "sgt_"+strings.Repeat("A", 43))
	f.Add("sgt_", "sgt_"+strings.Repeat("/", 43))
	f.Add("x_", "")
	f.Fuzz(func(t *testing.T, prefix, s string) {
		if err := ParseToken(prefix, s); err != nil {
			return
		}
		if !strings.HasPrefix(s, prefix) || len(s) != len(prefix)+43 {
			t.Fatalf("accepted %q for prefix %q", s, prefix)
		}
		b, err := tokenEnc.DecodeString(s[len(prefix):])
		if err != nil || len(b) != TokenBytes || tokenEnc.EncodeToString(b) != s[len(prefix):] {
			t.Fatalf("accepted non-canonical body %q", s)
		}
	})
}
