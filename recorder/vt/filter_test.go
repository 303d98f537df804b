package vt

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

func filterString(s string) string {
	var b bytes.Buffer
	f := &Filter{W: &b}
	f.Write([]byte(s))
	return b.String()
}

func TestFilter(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{"text and colours", "hello \x1b[1;31mred\x1b[0m\r\n", "hello \x1b[1;31mred\x1b[0m\r\n"},
		{"cursor, erase, alternate screen", "\x1b[2J\x1b[5;10H\x1b[K\x1b[?1049h\x1b[?25l\x1b7\x1b8\x1b(B", "\x1b[2J\x1b[5;10H\x1b[K\x1b[?1049h\x1b[?25l\x1b7\x1b8\x1b(B"},
		{"title kept", "\x1b]0;user@host: ~\x07a\x1b]2;t\x1b\\b", "\x1b]0;user@host: ~\x07a\x1b]2;t\x1b\\b"},
		{"clipboard write", "a\x1b]52;c;cm0gLXJmIH4K\x07b", "ab"},
		{"clipboard write, ST", "a\x1b]52;c;cm0gLXJmIH4K\x1b\\b", "ab"},
		{"hyperlink", "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\", "click"},
		{"colour query", "\x1b]10;?\x07x", "x"},
		{"dcs", "a\x1bP$qm\x1b\\b\x1bPtmux;\x1b\x1b]52;c;eA==\x07\x1b\\c", "abc"},
		{"apc, pm, sos", "\x1b_Gf=100;AAAA\x1b\\x\x1b^pm\x1b\\y\x1bXsos\x1b\\z", "xyz"},
		// xterm ends a string at any ESC: what follows is shown, and
		// must not be left out (an agent's printf '\033P' would hide
		// the rest of the session from a supervisor's view).
		{"esc ends dcs", "x\x1bP\x1b[0mafter\r\n", "x\x1b[0mafter\r\n"},
		{"esc ends apc, then osc 52", "\x1b_G\x1b]52;c;eA==\x07ok", "ok"},
		{"device status and attributes", "\x1b[6n\x1b[5n\x1b[c\x1b[>c\x1bZok", "ok"},
		{"window operations", "\x1b[21t\x1b[8;100;200t\x1b[14tok", "ok"},
		{"mode report", "\x1b[?2004$p\x1b[4$pok", "ok"},
		{"mouse and focus reporting", "\x1b[?1000h\x1b[?1006;1004h\x1b[?25;1002lok\x1b[?2004h", "ok\x1b[?2004h"},
		{"c1 as utf-8", "a\xc2\x9b6nb\xc2\x9d52;c;x\x07c\xc2\xa9", "a6nb52;c;x\x07c\xc2\xa9"},
		{"controls inside a sequence", "\x1b[1\n5n\x1b[2\rA", "\n\r\x1b[2A"},
		{"cancelled", "\x1b[12\x18x\x1b]52;c;x\x1ay", "\x18x\x1ay"},
		{"long csi left out", "\x1b[" + strings.Repeat("1;", 100) + "mok", "ok"},
		{"long osc left out", "\x1b]0;" + strings.Repeat("t", 5000) + "\x07ok", "ok"},
		{"esc in osc", "\x1b]52;c;x\x1b[1mok", "\x1b[1mok"},
		{"escape then c1", "\x1b\xc2\x9d52;c;x\x07ok", "52;c;x\x07ok"},
		{"c1 inside a sequence", "\x1b[1\xc2\x9b6n", "6n"},
		{"c1 inside a title", "\x1b]0;a\xc2\x9c\xc2\x9d52;c;x\x07ok", "ok"},
		{"utf-8 title", "\x1b]2;café\x07", "\x1b]2;café\x07"},
		{"lone c2", "\xc2\x1b[6n\x90", "\uFFFD\uFFFD"},
		{"raw c1 csi", "a\x9b6nb\x9b21t", "a\uFFFD6nb\uFFFD21t"},
		{"raw c1 osc and st", "\x9d52;c;aGVsbG8=\x07\x9c", "\uFFFD52;c;aGVsbG8=\x07\uFFFD"},
		{"raw c1 dcs", "\x90$q m\x9c", "\uFFFD$q m\uFFFD"},
		{"utf-8 passes", "é ✓ 東京 😀 \u00a0\U0010FFFF", "é ✓ 東京 😀 \u00a0\U0010FFFF"},
		{"invalid utf-8", "\xc0\xaf \xe0\x80\xaf \xed\xa0\x80 \xf4\x90\x80\x80 \xf8 \xff", "\uFFFD\uFFFD \uFFFD\uFFFD\uFFFD \uFFFD\uFFFD\uFFFD \uFFFD\uFFFD\uFFFD\uFFFD \uFFFD \uFFFD"},
		{"cut-off characters", "\xe2\x9c\x1b[1m\xf0\x9f\x98x\xe2\x9c\x93", "\uFFFD\x1b[1m\uFFFDx✓"},
		{"leave utf-8", "\x1b%@\x9b6n\x1b%G\x1b%/Gok\x1b(0\x1b(B", "\uFFFD6nok\x1b(0\x1b(B"},
		{"raw c1 in a title", "\x1b]0;a\x9cb\x07\x1b]2;\xc3\x07ok", "ok"},
		{"long escape intermediates", "\x1b" + strings.Repeat(" ", 100) + "Fok", "ok"},
	} {
		if got := filterString(tt.in); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

// FuzzFilter checks that the filter's output, filtered again, is the same
// (it keeps nothing it would leave out), that splitting the input between
// two writes changes nothing, and that nothing left out survives in it.
func FuzzFilter(f *testing.F) {
	for _, s := range []string{
		"hello \x1b[1;31mred\x1b[0m\r\n\x1b]0;title\x07",
		"\x1b]52;c;cm0gLXJmIH4K\x07\x1bP$qm\x1b\\\x1b[6n\x1b[?1000h",
		"a\xc2\x9b6nb\xc2\x9d52;c;x\x07\xc2\xa9\x1b[1\n5n",
		"\x1b%@\x9b6n\x9d52;c;aGVsbG8=\x07\x9b21t\x90$q m\x9c",
		"é✓😀\xe2\x9c\x1b[1m\xf0\x9f\x98x\xed\xa0\x80\xc0\xaf\xff",
		"\x1b]0;t\x9c\x07\x1b]2;é\x07\x1b%G\x1b(0",
	} {
		f.Add([]byte(s), 3)
	}
	f.Fuzz(func(t *testing.T, in []byte, split int) {
		var whole bytes.Buffer
		(&Filter{W: &whole}).Write(in)
		out := whole.Bytes()

		var parts bytes.Buffer
		pf := &Filter{W: &parts}
		if len(in) > 0 {
			split = ((split % len(in)) + len(in)) % len(in)
		} else {
			split = 0
		}
		pf.Write(in[:split])
		pf.Write(in[split:])
		if !bytes.Equal(parts.Bytes(), out) {
			t.Fatalf("split at %d: %q, whole: %q", split, parts.Bytes(), out)
		}

		var again bytes.Buffer
		(&Filter{W: &again}).Write(out)
		if !bytes.Equal(again.Bytes(), out) {
			t.Fatalf("filtering again changed %q to %q", out, again.Bytes())
		}
		for _, bad := range []string{"\x1bP", "\x1b_", "\x1b^", "\x1bX", "\x1bZ", "\x1b]52", "\x1b]8;", "\x1b%"} {
			if bytes.Contains(out, []byte(bad)) {
				t.Fatalf("%q survived in %q", bad, out)
			}
		}
		// Neither raw 8-bit C1 controls nor any other byte that is not
		// UTF-8, nor C1 controls written as UTF-8.
		if !utf8.Valid(out) {
			t.Fatalf("output is not UTF-8: %q", out)
		}
		for _, r := range string(out) {
			if r >= 0x80 && r <= 0x9f {
				t.Fatalf("C1 control %U survived in %q", r, out)
			}
		}
	})
}
