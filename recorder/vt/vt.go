// Package vt is a small VT100/xterm screen model: it interprets terminal
// output (printable text, control characters, CSI cursor movement, erase,
// scrolling regions, SGR attributes, the alternate screen) into a grid of
// cells, and renders that grid back as escape sequences that reproduce it on
// a fresh terminal. The recorder uses it to write screen keyframes and to
// redraw a channel's screen for a supervisor who starts watching it.
//
// Characters take the columns wcwidth(3) gives them (see runeWidth): a wide
// one takes a cell and the Tail cell after it, and combining marks and other
// zero-width characters are kept with the cell before, as xterm and
// xterm.js (with its Unicode 11 widths) do. It is deliberately small
// otherwise: character sets and most modes are ignored, OSC/DCS strings are
// skipped, and lines are not re-wrapped on resize.
package vt

import (
	"strings"
	"unicode/utf8"
)

// Attr is a cell's rendition. Colors are 0 for the default, 1..256 for a
// palette index plus one, and rgbFlag|0xRRGGBB for a 24-bit color.
type Attr struct {
	FG, BG uint32
	Flags  uint16
}

const rgbFlag = 1 << 24

// Attribute flags: bit n-1 is SGR parameter n.
const (
	Bold uint16 = 1 << iota
	Faint
	Italic
	Underline
	Blink
	RapidBlink
	Reverse
	Hidden
	Strike
)

// Cell is one character position. It holds no pointers, so that writing
// cells costs the garbage collector nothing: the zero-width characters
// drawn with R (Screen.Chars) are kept in the screen, and the cell names
// them.
type Cell struct {
	R    rune // 0 means blank; Tail: the right half of the wide character before
	A    Attr
	comb uint32 // 0, or 1 + the index of its zero-width characters in Screen.combs
}

// Tail is the R of the cell taken by the right half of a wide character:
// the one after the cell that holds it.
const Tail rune = -1

// maxComb bounds the zero-width characters one cell keeps (more are
// dropped), so that output of endless combining marks cannot grow the
// screen.
const maxComb = 32

// Screen is a terminal screen. It is not safe for concurrent use.
type Screen struct {
	cols, rows int
	lines      [][]Cell // the visible buffer (main or alternate)
	main       [][]Cell // the main buffer while the alternate one is shown
	x, y       int
	wrapNext   bool
	attr       Attr
	top, bot   int // scroll region, inclusive
	saved      cursorState
	hidden     bool
	noWrap     bool

	// combs holds the zero-width characters of cells (Cell.comb), at most
	// maxComb bytes each. An entry is never changed, so cells copied by
	// scrolling and editing may share it; adding a character to a cell
	// adds an entry. When combsLimit entries are reached the ones still
	// named are kept and the rest dropped (compactCombs).
	combs      []string
	combsLimit int

	// parser state
	state  int
	params []int
	cur    int
	hasCur bool
	priv   byte
	u8     [4]byte
	u8n    int
}

type cursorState struct {
	x, y int
	attr Attr
}

const (
	stGround = iota
	stEsc
	stEscInter
	stCSI
	stString
	stStringEsc
)

// New returns a blank screen of the given size (clamped to 1..1000).
func New(cols, rows int) *Screen {
	s := &Screen{}
	s.setSize(cols, rows)
	return s
}

func clampSize(n, def int) int {
	if n <= 0 {
		return def
	}
	if n > 1000 {
		return 1000
	}
	return n
}

func (s *Screen) setSize(cols, rows int) {
	s.cols, s.rows = clampSize(cols, 80), clampSize(rows, 24)
	s.lines = blankLines(s.cols, s.rows)
	s.main = nil
	s.x, s.y, s.wrapNext = 0, 0, false
	s.top, s.bot = 0, s.rows-1
}

func blankLines(cols, rows int) [][]Cell {
	cells := make([]Cell, cols*rows)
	lines := make([][]Cell, rows)
	for i := range lines {
		lines[i] = cells[i*cols : (i+1)*cols : (i+1)*cols]
	}
	return lines
}

// Size returns the screen's columns and rows.
func (s *Screen) Size() (cols, rows int) { return s.cols, s.rows }

// Cell returns the cell at zero-based column x and row y (a blank one
// outside the screen).
func (s *Screen) Cell(x, y int) Cell {
	if y < 0 || y >= s.rows || x < 0 || x >= s.cols {
		return Cell{}
	}
	return s.lines[y][x]
}

// Cursor returns the zero-based cursor column and row.
func (s *Screen) Cursor() (x, y int) { return s.x, s.y }

// Reset clears the screen and all modes, keeping the size.
func (s *Screen) Reset() {
	*s = Screen{params: s.params[:0]}.withSize(s.cols, s.rows)
}

func (s Screen) withSize(cols, rows int) Screen {
	s.setSize(cols, rows)
	return s
}

// Resize changes the size, keeping the top-left of the content like xterm
// does for columns and the bottom rows for rows (so the cursor line stays).
func (s *Screen) Resize(cols, rows int) {
	cols, rows = clampSize(cols, 80), clampSize(rows, 24)
	if cols == s.cols && rows == s.rows {
		return
	}
	if s.main != nil { // leave the alternate screen first
		s.lines, s.main = s.main, nil
	}
	old := s.lines
	shift := 0
	if s.y >= rows {
		shift = s.y - rows + 1
	}
	nl := blankLines(cols, rows)
	for y := 0; y < rows && y+shift < len(old); y++ {
		ol := old[y+shift]
		copy(nl[y], ol)
		if len(ol) > cols && ol[cols].R == Tail { // a wide character cut in half
			nl[y][cols-1] = Cell{A: ol[cols-1].A}
		}
	}
	s.lines = nl
	s.cols, s.rows = cols, rows
	s.y -= shift
	s.x = min(s.x, cols-1)
	s.y = min(s.y, rows-1)
	s.top, s.bot = 0, rows-1
	s.wrapNext = false
}

// restoreCursor moves the cursor back to where it was saved, and its
// attributes. The screen may have shrunk since (or a snapshot may carry
// any position), so the position is clamped to the screen as xterm does.
func (s *Screen) restoreCursor() {
	s.x = min(max(s.saved.x, 0), s.cols-1)
	s.y = min(max(s.saved.y, 0), s.rows-1)
	s.attr, s.wrapNext = s.saved.attr, false
}

// Write interprets p as terminal output. It never fails.
func (s *Screen) Write(p []byte) (int, error) {
	for i := 0; i < len(p); i++ {
		b := p[i]
		if s.state == stGround {
			if b >= 0x20 && b < 0x7f && s.u8n == 0 {
				// fast path: a run of printable ASCII
				j := i
				for j < len(p) && p[j] >= 0x20 && p[j] < 0x7f {
					s.putWidth(rune(p[j]), 1)
					j++
				}
				i = j - 1
				continue
			}
			if b >= 0x80 || s.u8n > 0 {
				s.utf8Byte(b)
				continue
			}
		}
		s.step(b)
	}
	return len(p), nil
}

func (s *Screen) utf8Byte(b byte) {
	if b < 0x80 || (b&0xc0 != 0x80 && s.u8n > 0) {
		// an incomplete sequence is cut short by a new start or ASCII
		s.u8n = 0
		s.put(utf8.RuneError)
		if b < 0x80 {
			s.step(b)
			return
		}
	}
	s.u8[s.u8n] = b
	s.u8n++
	if utf8.FullRune(s.u8[:s.u8n]) || s.u8n == 4 {
		r, _ := utf8.DecodeRune(s.u8[:s.u8n])
		s.u8n = 0
		s.put(r)
	}
}

func (s *Screen) step(b byte) {
	switch s.state {
	case stGround:
		s.control(b)
	case stEsc:
		s.escape(b)
	case stEscInter:
		if b >= 0x30 { // final byte of e.g. ESC ( B
			s.state = stGround
		}
	case stCSI:
		s.csiByte(b)
	case stString:
		switch b {
		case 0x07:
			s.state = stGround
		case 0x1b:
			s.state = stStringEsc
		}
	case stStringEsc:
		s.state = stGround
		if b != '\\' {
			// The string ends unfinished, as in xterm: ESC begins a new
			// sequence.
			s.control(0x1b)
			s.step(b)
		}
	}
}

func (s *Screen) control(b byte) {
	switch b {
	case 0x1b:
		s.state = stEsc
	case '\r':
		s.x, s.wrapNext = 0, false
	case '\n', 0x0b, 0x0c:
		s.lineFeed()
	case '\b':
		if s.x > 0 {
			s.x--
		}
		s.wrapNext = false
	case '\t':
		s.x = min((s.x/8+1)*8, s.cols-1)
		s.wrapNext = false
	}
}

func (s *Screen) escape(b byte) {
	s.state = stGround
	switch b {
	case '[':
		s.state, s.params, s.cur, s.hasCur, s.priv = stCSI, s.params[:0], 0, false, 0
	case ']', 'P', 'X', '^', '_':
		s.state = stString
	case '(', ')', '*', '+', '#', '%':
		s.state = stEscInter
	case '7':
		s.saved = cursorState{s.x, s.y, s.attr}
	case '8':
		s.restoreCursor()
	case 'D':
		s.lineFeed()
	case 'E':
		s.x = 0
		s.lineFeed()
	case 'M':
		s.reverseIndex()
	case 'c':
		s.Reset()
	}
}

func (s *Screen) csiByte(b byte) {
	switch {
	case b >= '0' && b <= '9':
		if s.cur < 100000 {
			s.cur = s.cur*10 + int(b-'0')
		}
		s.hasCur = true
	case b == ';' || b == ':':
		s.pushParam()
	case b >= '<' && b <= '?':
		s.priv = b
	case b >= 0x20 && b <= 0x2f:
		// intermediate bytes: ignored
	case b >= 0x40 && b <= 0x7e:
		if s.hasCur || len(s.params) > 0 {
			s.pushParam()
		}
		s.state = stGround
		s.csi(b)
	case b == 0x1b:
		s.state = stEsc
	case b == 0x18 || b == 0x1a:
		s.state = stGround
	}
}

func (s *Screen) pushParam() {
	if len(s.params) < 32 {
		s.params = append(s.params, s.cur)
	}
	s.cur, s.hasCur = 0, false
}

// param returns parameter i, or def when it is missing or zero.
func (s *Screen) param(i, def int) int {
	if i < len(s.params) && s.params[i] != 0 {
		return s.params[i]
	}
	return def
}

func (s *Screen) csi(final byte) {
	if s.priv == '?' {
		if final == 'h' || final == 'l' {
			s.privateMode(final == 'h')
		}
		return
	}
	if s.priv != 0 {
		return
	}
	n := s.param(0, 1)
	switch final {
	case 'A':
		s.moveTo(s.x, max(s.y-n, s.regionTop()))
	case 'B', 'e':
		s.moveTo(s.x, min(s.y+n, s.regionBot()))
	case 'C', 'a':
		s.moveTo(s.x+n, s.y)
	case 'D':
		s.moveTo(s.x-n, s.y)
	case 'E':
		s.moveTo(0, min(s.y+n, s.regionBot()))
	case 'F':
		s.moveTo(0, max(s.y-n, s.regionTop()))
	case 'G', '`':
		s.moveTo(n-1, s.y)
	case 'd':
		s.moveTo(s.x, n-1)
	case 'H', 'f':
		s.moveTo(s.param(1, 1)-1, n-1)
	case 'J':
		s.eraseDisplay(s.param(0, 0))
	case 'K':
		s.eraseLine(s.param(0, 0))
	case '@':
		s.insertChars(n)
	case 'P':
		s.deleteChars(n)
	case 'X':
		s.clearCells(s.y, s.x, min(s.x+n, s.cols))
	case 'L':
		if s.y >= s.top && s.y <= s.bot {
			s.scrollDown(s.y, s.bot, n)
		}
	case 'M':
		if s.y >= s.top && s.y <= s.bot {
			s.scrollUp(s.y, s.bot, n)
		}
	case 'S':
		s.scrollUp(s.top, s.bot, n)
	case 'T':
		s.scrollDown(s.top, s.bot, n)
	case 'm':
		s.sgr()
	case 'r':
		top, bot := s.param(0, 1)-1, s.param(1, s.rows)-1
		if top < bot && bot < s.rows {
			s.top, s.bot = top, bot
			s.moveTo(0, 0)
		}
	case 's':
		s.saved = cursorState{s.x, s.y, s.attr}
	case 'u':
		s.restoreCursor()
	}
}

func (s *Screen) privateMode(set bool) {
	for _, p := range s.params {
		switch p {
		case 7:
			s.noWrap = !set
		case 25:
			s.hidden = !set
		case 47, 1047, 1049:
			if set && s.main == nil {
				if p == 1049 {
					s.saved = cursorState{s.x, s.y, s.attr}
				}
				s.main = s.lines
				s.lines = blankLines(s.cols, s.rows)
			} else if !set && s.main != nil {
				s.lines, s.main = s.main, nil
				if p == 1049 {
					s.restoreCursor()
				}
			}
			s.wrapNext = false
		}
	}
}

func (s *Screen) regionTop() int {
	if s.y >= s.top {
		return s.top
	}
	return 0
}

func (s *Screen) regionBot() int {
	if s.y <= s.bot {
		return s.bot
	}
	return s.rows - 1
}

func (s *Screen) moveTo(x, y int) {
	s.x = max(0, min(x, s.cols-1))
	s.y = max(0, min(y, s.rows-1))
	s.wrapNext = false
}

func (s *Screen) put(r rune) {
	w := runeWidth(r)
	if w == 0 {
		s.combine(r)
		return
	}
	s.putWidth(r, w)
}

// putWidth prints r, which takes w columns (1 or 2).
func (s *Screen) putWidth(r rune, w int) {
	if s.wrapNext {
		s.wrap()
	}
	if w == 2 && s.x == s.cols-1 { // it does not fit
		if s.noWrap || s.cols < 2 {
			return // dropped, as xterm.js does
		}
		s.unsplit(s.y, s.x, s.cols)
		s.lines[s.y][s.x] = Cell{A: s.attr}
		s.wrap()
	}
	line := s.lines[s.y]
	if line[s.x].R == Tail || (s.x+w < s.cols && line[s.x+w].R == Tail) {
		s.unsplit(s.y, s.x, s.x+w)
	}
	line[s.x] = Cell{R: r, A: s.attr}
	if w == 2 {
		line[s.x+1] = Cell{R: Tail, A: s.attr}
	}
	if s.x+w >= s.cols {
		s.x, s.wrapNext = s.cols-1, true
	} else {
		s.x += w
	}
}

// wrap ends a pending wrap: the cursor goes to the start of the next line,
// unless autowrap is off.
func (s *Screen) wrap() {
	if !s.noWrap {
		s.x = 0
		s.lineFeed()
	}
	s.wrapNext = false
}

// combine adds the zero-width character r to the character before the
// cursor. With none there (the start of a line, or a blank), r is
// dropped.
func (s *Screen) combine(r rune) {
	x := s.x - 1
	if s.wrapNext {
		x = s.x
	}
	line := s.lines[s.y]
	if x > 0 && line[x].R == Tail {
		x--
	}
	if x < 0 {
		return
	}
	c := &line[x]
	if c.R == 0 || c.R == Tail {
		return
	}
	cur := s.comb(*c)
	if len(cur)+utf8.RuneLen(r) > maxComb {
		return
	}
	if len(s.combs) >= s.combsLimit {
		s.compactCombs()
	}
	s.combs = append(s.combs, cur+string(r))
	c.comb = uint32(len(s.combs))
}

// comb returns the zero-width characters drawn with c.
func (s *Screen) comb(c Cell) string {
	if c.comb == 0 {
		return ""
	}
	return s.combs[c.comb-1]
}

// compactCombs drops the entries of combs no cell names any more and sets
// the next limit at twice what is left (at least 1024), so that the work
// is constant per entry added and combs stays within twice the cells that
// have any.
func (s *Screen) compactCombs() {
	var kept []string
	moved := map[uint32]uint32{}
	for _, buf := range [][][]Cell{s.lines, s.main} {
		for _, line := range buf {
			for i := range line {
				c := &line[i]
				if c.comb == 0 {
					continue
				}
				n, ok := moved[c.comb]
				if !ok {
					kept = append(kept, s.combs[c.comb-1])
					n = uint32(len(kept))
					moved[c.comb] = n
				}
				c.comb = n
			}
		}
	}
	s.combs = kept
	s.combsLimit = max(2*len(kept), 1024)
}

// Chars returns the characters of the cell at zero-based column x and row
// y: its character and the zero-width ones drawn with it; "" for a blank
// cell or the right half of a wide character.
func (s *Screen) Chars(x, y int) string {
	c := s.Cell(x, y)
	if c.R == 0 || c.R == Tail {
		return ""
	}
	return string(c.R) + s.comb(c)
}

// unsplit blanks the halves, outside cells from..to-1 of row y, of the
// wide characters those cells cut through, before the cells are
// overwritten or cleared.
func (s *Screen) unsplit(y, from, to int) {
	line := s.lines[y]
	if from > 0 && from < len(line) && line[from].R == Tail {
		line[from-1] = Cell{A: line[from-1].A}
	}
	if to > 0 && to < len(line) && line[to].R == Tail {
		line[to] = Cell{A: line[to].A}
	}
}

func (s *Screen) lineFeed() {
	s.wrapNext = false
	if s.y == s.bot {
		s.scrollUp(s.top, s.bot, 1)
	} else if s.y < s.rows-1 {
		s.y++
	}
}

func (s *Screen) reverseIndex() {
	s.wrapNext = false
	if s.y == s.top {
		s.scrollDown(s.top, s.bot, 1)
	} else if s.y > 0 {
		s.y--
	}
}

// scrollUp moves lines top..bot up by n, blanking the bottom n lines.
func (s *Screen) scrollUp(top, bot, n int) {
	n = min(n, bot-top+1)
	if n <= 0 {
		return
	}
	region := s.lines[top : bot+1]
	moved := append([][]Cell(nil), region[:n]...)
	copy(region, region[n:])
	copy(region[len(region)-n:], moved)
	for _, l := range moved {
		clear(l)
	}
}

// scrollDown moves lines top..bot down by n, blanking the top n lines.
func (s *Screen) scrollDown(top, bot, n int) {
	n = min(n, bot-top+1)
	if n <= 0 {
		return
	}
	region := s.lines[top : bot+1]
	moved := append([][]Cell(nil), region[len(region)-n:]...)
	copy(region[n:], region[:len(region)-n])
	copy(region, moved)
	for _, l := range moved {
		clear(l)
	}
}

func (s *Screen) clearCells(y, from, to int) {
	if from < to {
		s.unsplit(y, from, to)
		s.blank(y, from, to)
	}
}

// blank erases cells from..to-1 of row y to the background colour, as
// they are: the caller has dealt with wide characters they cut.
func (s *Screen) blank(y, from, to int) {
	line := s.lines[y][from:to]
	for i := range line {
		line[i] = Cell{A: Attr{BG: s.attr.BG}}
	}
}

func (s *Screen) eraseDisplay(mode int) {
	switch mode {
	case 0:
		s.clearCells(s.y, s.x, s.cols)
		for y := s.y + 1; y < s.rows; y++ {
			s.clearCells(y, 0, s.cols)
		}
	case 1:
		for y := 0; y < s.y; y++ {
			s.clearCells(y, 0, s.cols)
		}
		s.clearCells(s.y, 0, s.x+1)
	case 2, 3:
		for y := 0; y < s.rows; y++ {
			s.clearCells(y, 0, s.cols)
		}
	}
	s.wrapNext = false
}

func (s *Screen) eraseLine(mode int) {
	switch mode {
	case 0:
		s.clearCells(s.y, s.x, s.cols)
	case 1:
		s.clearCells(s.y, 0, s.x+1)
	case 2:
		s.clearCells(s.y, 0, s.cols)
	}
	s.wrapNext = false
}

func (s *Screen) insertChars(n int) {
	line := s.lines[s.y]
	n = min(n, s.cols-s.x)
	s.unsplit(s.y, s.x, s.x)           // a wide character the insertion splits
	s.unsplit(s.y, s.cols-n, s.cols-n) // one split where the line's end cuts it off
	copy(line[s.x+n:], line[s.x:])
	s.blank(s.y, s.x, s.x+n) // what is left there are stale copies
}

func (s *Screen) deleteChars(n int) {
	line := s.lines[s.y]
	n = min(n, s.cols-s.x)
	s.unsplit(s.y, s.x, s.x+n) // wide characters cut by the deleted cells
	copy(line[s.x:], line[s.x+n:])
	s.blank(s.y, s.cols-n, s.cols) // stale copies, which unsplit would misread
}

// Line returns row y as plain text without trailing blanks.
func (s *Screen) Line(y int) string {
	if y < 0 || y >= s.rows {
		return ""
	}
	var b strings.Builder
	for _, c := range s.lines[y] {
		switch c.R {
		case 0:
			b.WriteByte(' ')
		case Tail:
		default:
			b.WriteRune(c.R)
			b.WriteString(s.comb(c))
		}
	}
	return strings.TrimRight(b.String(), " ")
}

// String returns the screen as plain text, one line per row, with trailing
// blank lines removed.
func (s *Screen) String() string {
	lines := make([]string, s.rows)
	for y := range lines {
		lines[y] = s.Line(y)
	}
	return strings.TrimRight(strings.Join(lines, "\n"), "\n")
}
