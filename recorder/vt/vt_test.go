package vt

import (
	"strings"
	"testing"
)

func TestScreen(t *testing.T) {
	tests := []struct {
		name   string
		cols   int
		rows   int
		in     string
		want   string
		cx, cy int
	}{
		{"text", 10, 3, "hello\r\nworld", "hello\nworld", 5, 1},
		{"wrap", 5, 3, "abcdefg", "abcde\nfg", 2, 1},
		{"scroll", 5, 2, "a\r\nb\r\nc", "b\nc", 1, 1},
		{"cup and erase", 10, 3, "xxxxxxxxxx\x1b[1;3H\x1b[K", "xx", 2, 0},
		{"erase display", 10, 3, "ab\r\ncd\x1b[2J\x1b[Hz", "z", 1, 0},
		{"sgr kept", 10, 2, "\x1b[1;31mred\x1b[0m ok", "red ok", 6, 0},
		{"backspace", 10, 2, "abc\b\bX", "aXc", 2, 0},
		{"utf8", 10, 2, "h\xc3\xa9llo", "héllo", 5, 0},
		{"split utf8", 10, 2, "\xe2\x82", "", 0, 0},
		{"alt screen", 10, 2, "main\x1b[?1049hALT\x1b[?1049l", "main", 4, 0},
		{"scroll region", 5, 3, "top\x1b[2;3r\x1b[3;1Ha\r\nb\r\nc", "top\nb\nc", 1, 2},
		{"osc ignored", 10, 2, "\x1b]0;title\x07ok", "ok", 2, 0},
		{"delete chars", 10, 2, "abcdef\x1b[1;2H\x1b[2P", "adef", 1, 0},
		{"insert line", 10, 3, "a\r\nb\x1b[1;1H\x1b[L", "\na\nb", 0, 0},
		{"reverse index", 10, 3, "a\x1b[H\x1bMz", "z\na", 1, 0},
		{"tab", 20, 2, "a\tb", "a       b", 9, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(tt.cols, tt.rows)
			s.Write([]byte(tt.in))
			if got := s.String(); got != tt.want {
				t.Errorf("screen: got %q, want %q", got, tt.want)
			}
			if x, y := s.Cursor(); x != tt.cx || y != tt.cy {
				t.Errorf("cursor: got %d,%d, want %d,%d", x, y, tt.cx, tt.cy)
			}
		})
	}
}

// TestSnapshotRoundTrip checks that replaying a snapshot on a fresh screen
// yields the same cells, cursor and attributes.
func TestSnapshotRoundTrip(t *testing.T) {
	inputs := []string{
		"plain\r\ntext",
		"\x1b[1;32mgreen\x1b[0m and \x1b[38;2;1;2;3mrgb\x1b[48;5;200m bg",
		"\x1b[5;10Hmiddle\x1b[?25l\x1b[7mrev",
		strings.Repeat("line of text\r\n", 40) + "\x1b[2;4r",
	}
	for _, in := range inputs {
		a := New(40, 10)
		a.Write([]byte(in))
		b := New(40, 10)
		b.Write(a.Snapshot())
		if a.String() != b.String() {
			t.Errorf("%q: text: got %q, want %q", in, b.String(), a.String())
		}
		ax, ay := a.Cursor()
		bx, by := b.Cursor()
		if ax != bx || ay != by || a.hidden != b.hidden || a.attr != b.attr {
			t.Errorf("%q: cursor/attr: got %d,%d %v %v, want %d,%d %v %v", in, bx, by, b.hidden, b.attr, ax, ay, a.hidden, a.attr)
		}
		for y := range a.lines {
			for x := range a.lines[y] {
				ca, cb := a.lines[y][x], b.lines[y][x]
				if ca.R == 0 {
					ca.R = ' '
				}
				if cb.R == 0 {
					cb.R = ' '
				}
				if ca != cb {
					t.Fatalf("%q: cell %d,%d: got %v, want %v", in, x, y, cb, ca)
				}
			}
		}
	}
}

func TestResize(t *testing.T) {
	s := New(10, 3)
	s.Write([]byte("a\r\nb\r\nc"))
	s.Resize(5, 2)
	if got, want := s.String(), "b\nc"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	s.Resize(20, 5)
	if got, want := s.String(), "b\nc"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func FuzzScreen(f *testing.F) {
	f.Add([]byte("\x1b[2J\x1b[10;10Hhi\x1b[?1049h\x1b[1;2;3;4;5;38;5;9m"), 10, 5)
	f.Fuzz(func(t *testing.T, p []byte, cols, rows int) {
		s := New(cols%300, rows%300)
		s.Write(p)
		s2 := New(cols%300, rows%300)
		s2.Write(s.Snapshot())
		if s.String() != s2.String() {
			t.Fatalf("snapshot mismatch")
		}
	})
}

func TestSnapshotPendingWrap(t *testing.T) {
	a := New(5, 3)
	a.Write([]byte("abcde"))
	b := New(5, 3)
	b.Write(a.Snapshot())
	a.Write([]byte("f"))
	b.Write([]byte("f"))
	if a.String() != b.String() {
		t.Errorf("got %q, want %q", b.String(), a.String())
	}
}
