package assist

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestPrintable(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"plain", "Alice Agent", "Alice Agent"},
		{"unicode", "Zoë Ågren 日本", "Zoë Ågren 日本"},
		{"osc52 clipboard", "Alice\x1b]52;c;ZWNobyBwd25lZA==\x07 Agent", "Alice Agent"},
		{"osc with ST", "a\x1b]0;title\x1b\\b", "ab"},
		{"csi", "\x1b[2J\x1b[1;1HACME", "ACME"},
		{"csi private", "x\x1b[?1049hy", "xy"},
		{"two byte", "a\x1bcb", "ab"},
		{"c1 csi", "a\u009b31mb", "ab"},
		{"c1 osc", "a\u009d52;c;eA==\u009cb", "ab"},
		{"controls", "a\x00b\x08c\x7fd", "abcd"},
		{"newlines", "line one\nline two\r\tend", "line one line two  end"},
		{"bidi override", "fix \u202egnp.exe", "fix gnp.exe"},
		{"bidi isolate", "a\u2066b\u2069c", "abc"},
		{"line separator", "a\u2028b\u2029c", "abc"},
		{"zero width", "a\u200bb\ufeffc", "abc"},
		{"invalid utf8", "a\xffb", "a\ufffdb"},
		{"cut", strings.Repeat("x", 20), strings.Repeat("x", 10) + "…"},
		{"escape at end", "abc\x1b", "abc"},
		{"unterminated osc", "abc\x1b]52;c;AAAA", "abc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			max := 64
			if tc.name == "cut" {
				max = 10
			}
			if got := Printable(tc.in, max); got != tc.want {
				t.Errorf("Printable(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzPrintable(f *testing.F) {
	for _, s := range []string{"Alice", "\x1b]52;c;AA==\x07", "\u202e", "a\u2028b", "\x9b1m", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Printable(s, 64)
		if n := utf8.RuneCountInString(got); n > 65 {
			t.Fatalf("%d runes, want at most 65", n)
		}
		for _, r := range got {
			if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || unicode.Is(unicode.Cf, r) || r == 0x2028 || r == 0x2029 {
				t.Fatalf("Printable(%q) = %q holds %U", s, got, r)
			}
		}
	})
}
