package vt

import (
	"strconv"
	"unicode/utf8"
)

// sgr applies Select Graphic Rendition parameters to the current attribute.
func (s *Screen) sgr() {
	ps := s.params
	if len(ps) == 0 {
		s.attr = Attr{}
		return
	}
	for i := 0; i < len(ps); i++ {
		p := ps[i]
		switch {
		case p == 0:
			s.attr = Attr{}
		case p >= 1 && p <= 9:
			s.attr.Flags |= 1 << (p - 1)
		case p == 21 || p == 22:
			s.attr.Flags &^= Bold | Faint
		case p >= 23 && p <= 29:
			s.attr.Flags &^= 1 << (p - 21)
		case p >= 30 && p <= 37:
			s.attr.FG = uint32(p-30) + 1
		case p == 39:
			s.attr.FG = 0
		case p >= 40 && p <= 47:
			s.attr.BG = uint32(p-40) + 1
		case p == 49:
			s.attr.BG = 0
		case p >= 90 && p <= 97:
			s.attr.FG = uint32(p-90+8) + 1
		case p >= 100 && p <= 107:
			s.attr.BG = uint32(p-100+8) + 1
		case p == 38 || p == 48:
			c, used := extColor(ps[i+1:])
			i += used
			if p == 38 {
				s.attr.FG = c
			} else {
				s.attr.BG = c
			}
		}
	}
}

// extColor parses "5;N" or "2;R;G;B" and returns the color and how many
// parameters it used.
func extColor(ps []int) (uint32, int) {
	if len(ps) >= 2 && ps[0] == 5 {
		return uint32(ps[1]&0xff) + 1, 2
	}
	if len(ps) >= 4 && ps[0] == 2 {
		return rgbFlag | uint32(ps[1]&0xff)<<16 | uint32(ps[2]&0xff)<<8 | uint32(ps[3]&0xff), 4
	}
	return 0, len(ps)
}

// appendSGR appends the escape sequence that sets attribute a from a reset.
func appendSGR(b []byte, a Attr) []byte {
	b = append(b, "\x1b[0"...)
	for i := 0; i < 9; i++ {
		if a.Flags&(1<<i) != 0 {
			b = append(b, ';')
			b = strconv.AppendInt(b, int64(i+1), 10)
		}
	}
	b = appendColor(b, a.FG, 38)
	b = appendColor(b, a.BG, 48)
	return append(b, 'm')
}

func appendColor(b []byte, c uint32, base int) []byte {
	switch {
	case c == 0:
		return b
	case c&rgbFlag != 0:
		b = append(b, ';')
		b = strconv.AppendInt(b, int64(base), 10)
		b = append(b, ";2;"...)
		b = strconv.AppendInt(b, int64(c>>16&0xff), 10)
		b = append(b, ';')
		b = strconv.AppendInt(b, int64(c>>8&0xff), 10)
		b = append(b, ';')
		return strconv.AppendInt(b, int64(c&0xff), 10)
	default:
		b = append(b, ';')
		b = strconv.AppendInt(b, int64(base), 10)
		b = append(b, ";5;"...)
		return strconv.AppendInt(b, int64(c-1), 10)
	}
}

// Snapshot renders the screen as bytes that, written to a freshly reset
// terminal of the same size, reproduce its content, attributes, cursor
// position and cursor visibility.
func (s *Screen) Snapshot() []byte {
	b := s.appendLines([]byte("\x1b[0m\x1b[H\x1b[2J"))
	return s.appendModes(b)
}

// Redraw renders the screen as bytes that bring a live terminal of the
// same size to it from whatever state earlier output left that terminal
// in, where Snapshot expects a freshly reset one: it first leaves the
// alternate screen and resets the scrolling region and autowrap, and
// while the alternate screen is shown it draws the main screen under it,
// so that a program leaving the alternate screen uncovers the right text.
//
// A non-empty status is drawn over the top line in reverse video (its
// printable ASCII only, cut to the screen's width), before the cursor is
// put back: a note that lasts until the program redraws that line.
//
// The result is bounded by the screen's size: a cell takes at most the
// escape sequence of its attributes, its character and maxComb bytes,
// and a screen at most 1000x1000 cells (twice that with the alternate
// screen).
func (s *Screen) Redraw(status string) []byte {
	b := []byte("\x1b[?1049l\x1b[r\x1b[?7h\x1b[0m\x1b[H\x1b[2J")
	if s.main != nil {
		m := *s
		m.lines, m.main = s.main, nil
		m.x = min(max(s.saved.x, 0), s.cols-1)
		m.y = min(max(s.saved.y, 0), s.rows-1)
		m.wrapNext, m.attr, m.top, m.bot, m.noWrap, m.hidden = false, Attr{}, 0, s.rows-1, false, false
		b = m.appendLines(b)
		b = m.appendModes(b)
		b = append(b, "\x1b[?1049h\x1b[0m\x1b[H\x1b[2J"...)
	}
	b = s.appendLines(b)
	if status != "" {
		b = append(b, "\x1b[1;1H\x1b[0;7m"...)
		n := 0
		for i := 0; i < len(status) && n < s.cols; i++ {
			if c := status[i]; c >= 0x20 && c < 0x7f {
				b = append(b, c)
				n++
			}
		}
		b = append(b, "\x1b[0m"...)
	}
	return s.appendModes(b)
}

// appendLines appends what draws the screen's lines on a cleared screen.
func (s *Screen) appendLines(b []byte) []byte {
	for y, line := range s.lines {
		last := -1
		for x, c := range line {
			if (c.R != 0 && c.R != ' ') || c.comb != 0 || c.A != (Attr{}) {
				last = x
			}
		}
		if last < 0 {
			continue
		}
		b = append(b, "\x1b["...)
		b = strconv.AppendInt(b, int64(y+1), 10)
		b = append(b, ";1H"...)
		cur := Attr{}
		for _, c := range line[:last+1] {
			if c.A != cur {
				b = appendSGR(b, c.A)
				cur = c.A
			}
			b = s.appendCell(b, c)
		}
		if cur != (Attr{}) {
			b = append(b, "\x1b[0m"...)
		}
	}
	return b
}

// appendModes appends what sets the scrolling region, the cursor, its
// pending wrap, the attributes and the modes as the screen has them.
func (s *Screen) appendModes(b []byte) []byte {
	if s.top != 0 || s.bot != s.rows-1 {
		b = append(b, "\x1b["...)
		b = strconv.AppendInt(b, int64(s.top+1), 10)
		b = append(b, ';')
		b = strconv.AppendInt(b, int64(s.bot+1), 10)
		b = append(b, 'r')
	}
	x := s.x
	reprint := s.wrapNext && !s.noWrap
	if reprint && x > 0 && s.lines[s.y][x].R == Tail {
		x-- // the wide character whose right half the cursor is on
	}
	b = append(b, "\x1b["...)
	b = strconv.AppendInt(b, int64(s.y+1), 10)
	b = append(b, ';')
	b = strconv.AppendInt(b, int64(x+1), 10)
	b = append(b, 'H')
	if reprint {
		// re-print the last character so the terminal is left with the
		// same pending wrap
		c := s.lines[s.y][x]
		b = appendSGR(b, c.A)
		b = s.appendCell(b, c)
		b = append(b, "\x1b[0m"...)
	}
	if s.noWrap {
		b = append(b, "\x1b[?7l"...)
	}
	if s.attr != (Attr{}) {
		b = appendSGR(b, s.attr)
	}
	if s.hidden {
		b = append(b, "\x1b[?25l"...)
	} else {
		b = append(b, "\x1b[?25h"...)
	}
	return b
}

// appendCell appends what draws c: a space for a blank, nothing for the
// right half of a wide character (drawing its left half filled it).
func (s *Screen) appendCell(b []byte, c Cell) []byte {
	switch c.R {
	case 0:
		return append(b, ' ')
	case Tail:
		return b
	}
	b = utf8.AppendRune(b, c.R)
	return append(b, s.comb(c)...)
}
