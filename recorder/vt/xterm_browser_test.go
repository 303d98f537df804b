package vt_test

import (
	"encoding/base64"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/chromedp/chromedp"

	"supportgate/gateway/browsertest"
	"supportgate/recorder/vt"
	"supportgate/web"
)

// xtermPage renders bytes in xterm.js with the Unicode 11 widths the
// review player uses, and reads back every cell (its characters and
// width) and the cursor.
const xtermPage = `<!doctype html><div id="t"></div>
<script src="/static/vendor/xterm/xterm.js"></script>
<script src="/static/vendor/xterm-addon-unicode11/addon-unicode11.js"></script>
<script>
window.result = null;
window.render = (cols, rows, b64) => {
  window.result = null;
  if (window.term) window.term.dispose();
  const term = new Terminal({cols, rows, scrollback: 0, allowProposedApi: true});
  term.loadAddon(new Unicode11Addon.Unicode11Addon());
  term.unicode.activeVersion = "11";
  term.open(document.getElementById("t"));
  window.term = term;
  const data = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  term.write(data, () => {
    const b = term.buffer.active, lines = [];
    for (let y = 0; y < rows; y++) {
      const l = b.getLine(b.baseY + y), cells = [];
      for (let x = 0; x < cols; x++) {
        const c = l.getCell(x);
        cells.push({s: c.getChars(), w: c.getWidth()});
      }
      lines.push(cells);
    }
    window.result = {lines, x: b.cursorX, y: b.cursorY};
  });
};
</script>`

type xtermCell struct {
	S string `json:"s"`
	W int    `json:"w"`
}

type xtermScreen struct {
	Lines [][]xtermCell `json:"lines"`
	X, Y  int
}

// TestScreenMatchesXterm writes terminal output with wide characters,
// combining marks, emoji and joiners, and the edits that cut wide
// characters in half, into a Screen and into xterm.js in Chromium (the
// review player's terminal), and checks that both hold the same
// characters in the same columns with the cursor in the same place. It
// then checks that the Screen's Snapshot (what a keyframe stores) draws
// the same screen in xterm.js.
//
// The characters are ones whose width Unicode 11 (xterm.js's table) and
// Unicode 15 (the Screen's) agree on.
func TestScreenMatchesXterm(t *testing.T) {
	static, err := fs.Sub(web.FS, "static")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(xtermPage))
	})
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	p := browsertest.New(t, browsertest.SPKIPin(srv.Certificate()))
	p.Do(chromedp.Navigate(srv.URL+"/"), browsertest.Until(`typeof window.render === "function" && typeof Unicode11Addon === "object"`))

	cases := []struct {
		name       string
		cols, rows int
		in         string
	}{
		{"cjk wrapping", 20, 4, "日本語のテキストと English を混ぜた行です。한국어도 있습니다"},
		{"wide does not fit", 5, 3, "abcd日e"},
		{"esc ends a string", 10, 2, "a\x1bPq\x1b[1mb\x1b]0;t\x1b[2mc\x1b_x\x1b\\d"},
		{"wide pending wrap", 4, 3, "ab日c"},
		{"wide dropped without autowrap", 5, 2, "\x1b[?7labcd日ef"},
		{"overwrite right half", 10, 2, "日本\x1b[1;2HX"},
		{"overwrite left half", 10, 2, "日本\x1b[1;3HX"},
		{"wide over wide offset", 10, 2, "日本\x1b[1;2H語"},
		{"combining", 20, 2, "e\u0301 a\u0308 \u0915\u094d\u0937 \u1100\u1161\u11a8"},
		{"combining on wide", 10, 2, "日\u0301x"},
		{"combining at pending wrap", 3, 2, "abc\u0301"},
		{"emoji", 20, 2, "\U0001F600\U0001F44D\U0001F3FD \u2764\ufe0f ok"},
		{"zwj sequence", 20, 2, "\U0001F468\u200d\U0001F469\u200d\U0001F467|"},
		{"erase to end at right half", 10, 2, "日本語\x1b[1;4H\x1b[K"},
		{"erase chars through left half", 10, 2, "日本語\x1b[1;2H\x1b[2X"},
		{"delete chars at right half", 10, 2, "日本語\x1b[1;2H\x1b[P"},
		{"delete chars before right half", 10, 2, "a日本\x1b[1;1H\x1b[2P"},
		{"insert chars at right half", 10, 2, "日本\x1b[1;2H\x1b[2@"},
		{"insert chars push wide off", 5, 2, "abc日\x1b[1;1H\x1b[@"},
		{"insert then delete chars around wide", 7, 2, "000日\x1b[1;1H00\x1b[2@\x1b[P"},
		{"half and full width", 10, 2, "ｱｲｳＡＢ"},
		{"scrolling wide lines", 7, 3, strings.Repeat("漢字かな交じり文 ", 4)},
		{"wide in the last two columns", 40, 3, strings.Repeat("x", 38) + "漢"},
		{"colours around wide", 12, 2, "\x1b[44m" + strings.Repeat("x", 11) + "漢\x1b[0m字"},
	}
	for _, c := range cases {
		s := vt.New(c.cols, c.rows)
		s.Write([]byte(c.in))
		for _, feed := range []struct {
			name string
			data []byte
		}{{"output", []byte(c.in)}, {"snapshot", s.Snapshot()}} {
			t.Run(c.name+"/"+feed.name, func(t *testing.T) {
				p.Do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf("render(%d, %d, %q), undefined",
					c.cols, c.rows, base64.StdEncoding.EncodeToString(feed.data))),
					browsertest.Until(`window.result !== null`))
				x := browsertest.Eval[xtermScreen](p, `window.result`)
				compareXterm(t, s, x, c.cols, c.rows)
			})
		}
	}
}

// compareXterm checks that xterm.js's cells and cursor match s.
func compareXterm(t *testing.T, s *vt.Screen, x xtermScreen, cols, rows int) {
	t.Helper()
	if len(x.Lines) != rows {
		t.Fatalf("xterm.js gave %d lines, want %d", len(x.Lines), rows)
	}
	for y := range rows {
		for col := range cols {
			c, xc := s.Cell(col, y), x.Lines[y][col]
			want, wantW := cellText(c, s.Chars(col, y))
			got := xc.S
			if got == " " {
				got = ""
			}
			gotW := xc.W
			// xterm.js leaves an orphaned right half, after an edit,
			// as an empty cell of width 0; the Screen blanks it.
			if gotW == 0 && (col == 0 || x.Lines[y][col-1].W != 2) {
				gotW = 1
			}
			if got != want || gotW != wantW {
				t.Fatalf("cell %d,%d: xterm.js has %q (width %d), the screen %q (width %d)\nxterm.js:\n%s\nscreen:\n%s",
					col, y, xc.S, xc.W, want, wantW, xtermText(x), s.String())
			}
		}
	}
	sx, sy := s.Cursor()
	if min(x.X, cols-1) != sx || x.Y != sy {
		t.Errorf("cursor: xterm.js at %d,%d, the screen at %d,%d", x.X, x.Y, sx, sy)
	}
}

// cellText is the characters xterm.js would report for c, whose
// characters are chars (blank as ""), and the columns it takes (0 for the
// right half of a wide character).
func cellText(c vt.Cell, chars string) (string, int) {
	switch c.R {
	case 0, ' ':
		return "", 1
	case vt.Tail:
		return "", 0
	}
	w := 1
	if !utf8.ValidRune(c.R) {
		return "?", 1
	}
	if isWide(c.R) {
		w = 2
	}
	return chars, w
}

// isWide reports whether the screen put r in two cells: a Screen of 4
// columns with r alone at the start has the cursor at column 2.
func isWide(r rune) bool {
	s := vt.New(4, 1)
	s.Write([]byte(string(r)))
	x, _ := s.Cursor()
	return x == 2
}

func xtermText(x xtermScreen) string {
	var b strings.Builder
	for _, l := range x.Lines {
		for _, c := range l {
			if c.W == 0 {
				continue
			}
			if c.S == "" {
				b.WriteByte(' ')
			}
			b.WriteString(c.S)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
