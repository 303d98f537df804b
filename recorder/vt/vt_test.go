package vt

import (
	"strings"
	"testing"
	"unicode"

	"golang.org/x/text/width"
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
		{"esc ends a string, as in xterm", 10, 2, "a\x1bPq\x1b[1mb\x1b]0;t\x1b[2mc\x1b_x\x1b\\d", "abcd", 4, 0},
		{"delete chars", 10, 2, "abcdef\x1b[1;2H\x1b[2P", "adef", 1, 0},
		{"insert line", 10, 3, "a\r\nb\x1b[1;1H\x1b[L", "\na\nb", 0, 0},
		{"reverse index", 10, 3, "a\x1b[H\x1bMz", "z\na", 1, 0},
		{"tab", 20, 2, "a\tb", "a       b", 9, 0},
		{"wide", 10, 2, "日本語x", "日本語x", 7, 0},
		{"wide does not fit", 5, 3, "abcd日e", "abcd\n日e", 3, 1},
		{"wide pending wrap", 4, 3, "ab日", "ab日", 3, 0},
		{"wide then wrap", 4, 3, "ab日c", "ab日\nc", 1, 1},
		{"wide dropped without autowrap", 5, 2, "\x1b[?7labcd日", "abcd", 4, 0},
		{"overwrite right half", 10, 2, "日本\x1b[1;2HX", " X本", 2, 0},
		{"overwrite left half", 10, 2, "日本\x1b[1;3HX", "日X", 3, 0},
		{"wide over wide offset", 10, 2, "日本\x1b[1;2H語", " 語", 3, 0},
		{"combining", 10, 2, "e\u0301a\u0308", "e\u0301a\u0308", 2, 0},
		{"combining on wide", 10, 2, "日\u0301x", "日\u0301x", 3, 0},
		{"combining at pending wrap", 3, 2, "abc\u0301", "abc\u0301", 2, 0},
		{"combining on blank dropped", 10, 2, "\x1b[3G\u0301", "", 2, 0},
		{"zwj sequence", 10, 2, "\U0001F468\u200d\U0001F469", "\U0001F468\u200d\U0001F469", 4, 0},
		{"variation selector", 10, 2, "\u2764\ufe0fx", "\u2764\ufe0fx", 2, 0},
		{"erase right half", 10, 2, "日本語\x1b[1;4H\x1b[K", "日", 3, 0},
		{"erase chars through left half", 10, 2, "日本語\x1b[1;2H\x1b[2X", "    語", 1, 0},
		{"delete chars at right half", 10, 2, "日本語\x1b[1;2H\x1b[P", " 本語", 1, 0},
		{"delete chars before right half", 10, 2, "a日本\x1b[1;1H\x1b[2P", " 本", 0, 0},
		{"insert chars at right half", 10, 2, "日本\x1b[1;2H\x1b[2@", "    本", 1, 0},
		{"insert chars push wide off", 5, 2, "abc日\x1b[1;1H\x1b[@", " abc", 0, 0},
		{"halfwidth katakana", 10, 2, "ｱｲｳ", "ｱｲｳ", 3, 0},
		{"fullwidth", 10, 2, "ＡＢ", "ＡＢ", 4, 0},
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
		"日本語のテキスト \U0001F600\U0001F44D\U0001F3FD e\u0301 \u2764\ufe0f",
		strings.Repeat("x", 38) + "漢", // a wide character in the last two columns: pending wrap
		strings.Repeat("x", 38) + "漢\u0301",
		"\x1b[44m" + strings.Repeat("x", 39) + "漢", // did not fit: a blank with the background left
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
				if ca.R != cb.R || ca.A != cb.A || chars(a, x, y) != chars(b, x, y) {
					t.Fatalf("%q: cell %d,%d: got %v %q, want %v %q", in, x, y, cb, chars(b, x, y), ca, chars(a, x, y))
				}
			}
		}
	}
}

// chars is s.Chars, with a blank cell's "" as " ": a snapshot draws
// blanks as spaces.
func chars(s *Screen, x, y int) string {
	if s.Cell(x, y).R == 0 {
		return " "
	}
	return s.Chars(x, y)
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
	f.Add([]byte("abc日本語e\u0301\U0001F468\u200d\U0001F469\x1b[1;2H\x1b[2@\x1b[1;5H\x1b[P\x1b[?7l漢字"), 7, 3)
	f.Fuzz(func(t *testing.T, p []byte, cols, rows int) {
		s := New(cols%300, rows%300)
		s.Write(p)
		s2 := New(cols%300, rows%300)
		s2.Write(s.Snapshot())
		if s.String() != s2.String() {
			t.Fatalf("snapshot mismatch")
		}
		for y := range s.lines {
			for x, c := range s.lines[y] {
				c2 := s2.lines[y][x]
				if c.R == 0 {
					c.R = ' '
				}
				if c2.R == 0 {
					c2.R = ' '
				}
				if c.R != c2.R || chars(s, x, y) != chars(s2, x, y) {
					t.Fatalf("cell %d,%d: %q %q after the snapshot, %q %q before", x, y, c2.R, chars(s2, x, y), c.R, chars(s, x, y))
				}
			}
		}
		if x, y := s.Cursor(); s.wrapNext == s2.wrapNext && !s.noWrap {
			if x2, y2 := s2.Cursor(); x != x2 || y != y2 {
				t.Fatalf("cursor %d,%d after the snapshot, %d,%d before", x2, y2, x, y)
			}
		}
	})
}

// TestRestoreCursorAfterShrink: a cursor saved on a larger screen is
// restored inside the smaller one (it used to land outside and the next
// character panicked, in the gateway's recording writer).
func TestRestoreCursorAfterShrink(t *testing.T) {
	for _, c := range []struct{ save, restore string }{
		{"\x1b7", "\x1b8"},
		{"\x1b[s", "\x1b[u"},
		{"\x1b[?1049h", "\x1b[?1049l"},
	} {
		s := New(80, 24)
		s.Write([]byte("\x1b[24;80H" + c.save))
		s.Resize(10, 5)
		s.Write([]byte(c.restore + "X"))
		if x, y := s.Cursor(); x >= 10 || y >= 5 {
			t.Errorf("%q then %q: cursor at %d,%d on a 10x5 screen", c.save, c.restore, x, y)
		}
		if !strings.Contains(s.String(), "X") {
			t.Errorf("%q then %q: the X written after is not on the screen", c.save, c.restore)
		}
	}
}

// FuzzScreenResize writes a, resizes, writes b: the cursor stays on the
// screen and the snapshot round trip holds, whatever a saved.
func FuzzScreenResize(f *testing.F) {
	f.Add([]byte("\x1b[24;80H\x1b7"), []byte("\x1b8X"), 80, 24, 10, 5)
	f.Add([]byte("\x1b[?1049h\x1b[5;5Hab"), []byte("\x1b[?1049lcd\x1b[u"), 20, 10, 3, 2)
	f.Fuzz(func(t *testing.T, a, b []byte, cols, rows, cols2, rows2 int) {
		s := New(cols%300, rows%300)
		s.Write(a)
		s.Resize(cols2%300, rows2%300)
		s.Write(b)
		if x, y := s.Cursor(); x < 0 || y < 0 || x >= s.cols || y >= s.rows {
			t.Fatalf("cursor %d,%d on a %dx%d screen", x, y, s.cols, s.rows)
		}
		s2 := New(s.cols, s.rows)
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

// BenchmarkScreenWrite interprets terminal output: ASCII lines with
// colours, and the same with CJK text.
func BenchmarkScreenWrite(b *testing.B) {
	for _, bc := range []struct{ name, line string }{
		{"ascii", "\x1b[1;32muser@host\x1b[0m:~$ ls -l /var/log/some/longer/path.txt 12345 67890\r\n"},
		{"cjk", "\x1b[1;32muser@host\x1b[0m:~$ cat 日本語のファイル名.txt 한국어 텍스트 😀\r\n"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := []byte(strings.Repeat(bc.line, 64<<10/len(bc.line)))
			s := New(120, 40)
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				s.Write(p)
			}
		})
	}
}

// TestRuneWidth checks the shortcuts of runeWidth against its lookups.
func TestRuneWidth(t *testing.T) {
	for _, r := range []struct{ lo, hi rune }{{0x4e00, 0x9fff}, {0xac00, 0xd7a3}, {0x3041, 0x3096}, {0x30a1, 0x30fa}} {
		for c := r.lo; c <= r.hi; c++ {
			if unicode.In(c, unicode.Mn, unicode.Me, unicode.Cf) {
				t.Fatalf("%U is zero-width", c)
			}
			if k := width.LookupRune(c).Kind(); k != width.EastAsianWide && k != width.EastAsianFullwidth {
				t.Fatalf("%U is not wide: %v", c, k)
			}
		}
	}
	for _, tt := range []struct {
		r    rune
		want int
	}{{'a', 1}, {0xad, 1}, {0x301, 0}, {0x200d, 0}, {0xfe0f, 0}, {0x1161, 0}, {'日', 2}, {'한', 2}, {0x1f600, 2}, {0xff21, 2}, {0xff71, 1}, {0x3099, 0}, {0x2764, 1}} {
		if got := runeWidth(tt.r); got != tt.want {
			t.Errorf("%U: width %d, want %d", tt.r, got, tt.want)
		}
	}
}

// TestCombsBounded redraws characters with combining marks over and over
// (as a progress line does) and checks that the screen keeps only the
// marks still on it, with the alternate screen's and the main screen's
// both intact.
func TestCombsBounded(t *testing.T) {
	s := New(10, 2)
	s.Write([]byte("o\u0308k\x1b[?1049h"))
	for i := range 100000 {
		s.Write([]byte("\re\u0301" + string(rune('a'+i%26)) + "\u0323"))
	}
	if got, want := s.Line(0), "e\u0301"+string(rune('a'+99999%26))+"\u0323"; got != want {
		t.Errorf("alternate screen: %q, want %q", got, want)
	}
	if n := len(s.combs); n > 1024 {
		t.Errorf("%d entries kept for 3 cells with marks", n)
	}
	s.Write([]byte("\x1b[?1049l"))
	if got, want := s.Line(0), "o\u0308k"; got != want {
		t.Errorf("main screen: %q, want %q", got, want)
	}
}

// TestRedraw replays a redraw on a terminal that earlier output left in
// another state (its own alternate screen, a scrolling region, autowrap
// off, a colour): the terminal shows the same text, cursor and modes, and
// once the program leaves the alternate screen, the same main screen
// under it. A Snapshot there would have drawn inside the stale scrolling
// region and on the wrong buffer.
func TestRedraw(t *testing.T) {
	dirty := "\x1b[?1049h\x1b[3;5r\x1b[?7l\x1b[31mstale\x1b[?25l"
	tests := []struct{ name, in string }{
		{"shell", "$ ls\r\nfile-a  file-b\r\n$ "},
		{"full-screen", "$ vim\r\n\x1b[?1049h\x1b[H\x1b[2Jline one\r\n~\r\n~\x1b[2;5r\x1b[10;1H\x1b[7m-- INSERT --\x1b[0m\x1b[1;5H"},
		{"pending wrap", strings.Repeat("y", 40)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := New(40, 10)
			a.Write([]byte(tt.in))
			b := New(40, 10)
			b.Write([]byte(dirty))
			b.Write(a.Redraw(""))
			for i := range 2 {
				if got, want := b.String(), a.String(); got != want {
					t.Errorf("step %d: text: got %q, want %q", i, got, want)
				}
				ax, ay := a.Cursor()
				bx, by := b.Cursor()
				if ax != bx || ay != by || a.hidden != b.hidden || a.noWrap != b.noWrap || a.top != b.top || a.bot != b.bot || (a.main == nil) != (b.main == nil) {
					t.Errorf("step %d: got cursor %d,%d hidden %v noWrap %v region %d-%d alt %v, want %d,%d %v %v %d-%d %v", i,
						bx, by, b.hidden, b.noWrap, b.top, b.bot, b.main != nil, ax, ay, a.hidden, a.noWrap, a.top, a.bot, a.main != nil)
				}
				// The program leaves the alternate screen (if it is in it)
				// and prints: both show the same main screen.
				leave := []byte("\x1b[?1049lback")
				a.Write(leave)
				b.Write(leave)
			}
		})
	}
}

// TestRedrawStatus: the status goes over the top line, printable ASCII
// only and cut to the width (20 columns here; Line trims the last
// blank), and the cursor is put back after it.
func TestRedrawStatus(t *testing.T) {
	a := New(20, 4)
	a.Write([]byte("top line\r\nsecond\r\n$ "))
	b := New(20, 4)
	b.Write(a.Redraw("[status\x1b]52;c;x\x07 that is far too long]"))
	if got, want := b.Line(0), "[status]52;c;x that"; got != want {
		t.Errorf("top line: got %q, want %q", got, want)
	}
	if got := b.Line(1); got != "second" {
		t.Errorf("second line: got %q, want %q", got, "second")
	}
	if x, y := b.Cursor(); x != 2 || y != 2 {
		t.Errorf("cursor: got %d,%d, want 2,2", x, y)
	}
	if b.lines[0][0].A.Flags&Reverse == 0 {
		t.Error("the status is not in reverse video")
	}
}
