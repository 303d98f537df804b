package vt

import (
	"bytes"
	"io"
	"unicode/utf8"
)

// Filter copies terminal output to W, leaving out the sequences that act
// beyond drawing the screen, so that replaying a recording cannot reach
// into the reviewer's machine through the terminal it plays in (the
// recorded output is the customer's and the agent's, and either could
// have printed anything):
//
//   - OSC strings other than window titles (0, 1, 2): OSC 52 writes the
//     clipboard, OSC 8 makes links, others query or change the terminal;
//   - DCS, SOS, PM and APC strings (terminal queries, passthrough to an
//     outer terminal, images);
//   - requests the terminal answers on its input (device status and
//     attributes: CSI n and c, ESC Z; window operations and reports: CSI
//     t; mode reports: CSI with a $ intermediate);
//   - modes that make the terminal report mouse and focus events on its
//     input (CSI ? 9, 1000-1006, 1015, 1016 h/l);
//   - C1 controls written as UTF-8 (U+0080 to U+009F), which some
//     terminals take as escape sequences;
//   - bytes that are not UTF-8, among them raw 8-bit C1 controls (0x9b
//     CSI, 0x9d OSC, 0x90 DCS), which become U+FFFD, and a window title
//     that is not UTF-8 or holds a C1 control;
//   - charset switches (ESC % ...), which take the terminal out of UTF-8,
//     where it would read 8-bit C1 controls in the text that follows.
//
// Everything else (text, C0 controls, cursor movement, erasing, colours,
// the alternate screen, titles) passes unchanged, so the output is UTF-8
// without C1 controls, for a terminal that decodes UTF-8. A sequence or a
// character may be split across writes. An OSC string longer than maxOSC
// or a CSI sequence longer than maxCSI is left out whole.
type Filter struct {
	W io.Writer

	state   int
	seq     []byte // the sequence being read, from its ESC
	dropSeq bool   // the sequence is too long: leave it out
	u       [4]byte
	un      int // bytes of a UTF-8 character in u, waiting for the rest
	out     []byte
}

const (
	maxCSI = 64
	maxOSC = 4096
)

const (
	fGround    = iota
	fEsc       // after ESC
	fEscInter  // ESC and intermediates (ESC ( B)
	fCSI       // ESC [ ...
	fOSC       // ESC ] ...
	fOSCEsc    // ESC inside an OSC string: ST or not
	fString    // DCS, SOS, PM, APC: left out until ST
	fStringEsc // ESC inside one
)

// Write filters p to f.W. It returns len(p) unless f.W fails.
func (f *Filter) Write(p []byte) (int, error) {
	f.out = f.out[:0]
	for _, b := range p {
		f.byte(b)
	}
	if len(f.out) > 0 {
		if _, err := f.W.Write(f.out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (f *Filter) byte(b byte) {
	switch f.state {
	case fGround:
		f.text(b)
	case fEsc, fEscInter, fCSI:
		if b >= 0x80 {
			// Not part of an escape sequence: the sequence is left out,
			// and b is text (a terminal decoding UTF-8 would see a
			// character here, perhaps a C1 control).
			f.state = fGround
			f.text(b)
			return
		}
		f.sequence(b)
	case fOSC:
		switch {
		case b == 0x07:
			f.endOSC(b)
		case b == 0x1b:
			f.state = fOSCEsc
		case b == 0x18 || b == 0x1a:
			f.control(b)
		default:
			f.grow(b, maxOSC)
		}
	case fOSCEsc:
		if b == '\\' {
			f.seq = append(f.seq, 0x1b)
			f.endOSC(b)
			return
		}
		f.start(fEsc, 0x1b) // the OSC string ends unfinished, as in xterm
		f.byte(b)
	case fString:
		switch b {
		case 0x1b:
			f.state = fStringEsc
		case 0x18, 0x1a:
			f.state = fGround
		}
	case fStringEsc:
		if b == '\\' {
			f.state = fGround
			return
		}
		// The string ends unfinished, as in xterm: ESC begins a new
		// sequence. Staying in the string would leave out everything
		// up to the next ST, which a terminal shows.
		f.start(fEsc, 0x1b)
		f.byte(b)
	}
}

// text handles byte b outside sequences: ASCII passes, ESC starts a
// sequence, and the bytes from 0x80 are decoded as UTF-8 (Unicode table
// 3-7, as utf8.Valid does): a character passes whole once complete, a C1
// control (U+0080 to U+009F) is left out, and each byte that cannot start
// or continue a character, or the start of a character cut off, becomes
// U+FFFD.
func (f *Filter) text(b byte) {
	if f.un > 0 {
		lo, hi := byte(0x80), byte(0xbf)
		if f.un == 1 {
			switch f.u[0] {
			case 0xe0:
				lo = 0xa0 // no overlong forms
			case 0xed:
				hi = 0x9f // no surrogates
			case 0xf0:
				lo = 0x90 // no overlong forms
			case 0xf4:
				hi = 0x8f // nothing above U+10FFFF
			}
		}
		if b >= lo && b <= hi {
			f.u[f.un] = b
			f.un++
			if f.un < utf8Len(f.u[0]) {
				return
			}
			n := f.un
			f.un = 0
			if f.u[0] == 0xc2 && f.u[1] <= 0x9f {
				return // U+0080-U+009F: a C1 control, left out
			}
			f.out = append(f.out, f.u[:n]...)
			return
		}
		f.un = 0
		f.out = append(f.out, "\uFFFD"...)
	}
	switch {
	case b == 0x1b:
		f.start(fEsc, b)
	case b < 0x80:
		f.out = append(f.out, b)
	case b >= 0xc2 && b <= 0xf4:
		f.u[0], f.un = b, 1
	default:
		// A continuation byte without a start (raw 8-bit C1 controls
		// among them), an overlong start or no UTF-8 at all.
		f.out = append(f.out, "\uFFFD"...)
	}
}

// utf8Len returns the length of the UTF-8 character that lead byte b
// (0xc2 to 0xf4) starts.
func utf8Len(b byte) int {
	switch {
	case b < 0xe0:
		return 2
	case b < 0xf0:
		return 3
	}
	return 4
}

// sequence handles byte b (ASCII) of an escape or CSI sequence.
func (f *Filter) sequence(b byte) {
	switch f.state {
	case fEsc:
		if b < 0x20 && b != 0x1b {
			f.control(b)
			return
		}
		f.seq = append(f.seq, b)
		switch {
		case b == '[':
			f.state = fCSI
		case b == ']':
			f.state = fOSC
		case b == 'P' || b == 'X' || b == '^' || b == '_':
			f.state = fString
		case b == 'Z': // DECID: the terminal answers
			f.state = fGround
		case b == '\\': // ST with no string to end (one ended unfinished)
			f.state = fGround
		case b >= 0x20 && b <= 0x2f:
			f.state = fEscInter
		case b == 0x1b:
			f.start(fEsc, b)
		default:
			f.keep()
		}
	case fEscInter:
		switch {
		case b == 0x1b:
			f.start(fEsc, b)
		case b < 0x20:
			f.control(b)
		case b >= 0x30 && b <= 0x7e:
			f.seq = append(f.seq, b)
			if f.dropSeq || bytes.IndexByte(f.seq, '%') >= 0 {
				// Too long, or a charset switch (ESC % @ leaves UTF-8).
				f.state = fGround
			} else {
				f.keep()
			}
		default:
			f.grow(b, maxCSI)
		}
	case fCSI:
		switch {
		case b >= 0x40 && b <= 0x7e:
			f.seq = append(f.seq, b)
			if f.dropSeq || !csiAllowed(f.seq) {
				f.state = fGround
			} else {
				f.keep()
			}
		case b == 0x1b:
			f.start(fEsc, b)
		case b < 0x20:
			f.control(b)
		default:
			f.grow(b, maxCSI)
		}
	}
}

// start begins a sequence in state st with its first byte b.
func (f *Filter) start(st int, b byte) {
	f.state, f.seq, f.dropSeq = st, append(f.seq[:0], b), false
}

// grow adds b to the sequence, which is left out once it exceeds max.
func (f *Filter) grow(b byte, max int) {
	if len(f.seq) >= max {
		f.dropSeq = true
		return
	}
	f.seq = append(f.seq, b)
}

// control handles a C0 control inside a sequence: CAN and SUB cancel the
// sequence; the others take effect at once, as in xterm, and the sequence
// goes on.
func (f *Filter) control(b byte) {
	if b == 0x18 || b == 0x1a {
		f.state = fGround
	}
	f.out = append(f.out, b)
}

// keep passes the sequence read and returns to text.
func (f *Filter) keep() {
	f.out = append(f.out, f.seq...)
	f.state = fGround
}

// endOSC ends an OSC string with terminator b, keeping it if it sets a
// window title in UTF-8 without C1 controls.
func (f *Filter) endOSC(b byte) {
	f.seq = append(f.seq, b)
	f.state = fGround
	if f.dropSeq || len(f.seq) < 4 {
		return
	}
	body := f.seq[2:] // after ESC ]
	if (body[0] == '0' || body[0] == '1' || body[0] == '2') && body[1] == ';' && textOnly(body) {
		f.out = append(f.out, f.seq...)
	}
}

// textOnly reports whether b is UTF-8 without C1 controls.
func textOnly(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for i := 0; i+1 < len(b); i++ {
		if b[i] == 0xc2 && b[i+1] <= 0x9f {
			return false
		}
	}
	return true
}

// csiAllowed reports whether the CSI sequence seq (ESC [ ... final) only
// draws or sets drawing modes.
func csiAllowed(seq []byte) bool {
	final := seq[len(seq)-1]
	body := seq[2 : len(seq)-1]
	for _, c := range body {
		if c == '$' { // DECRQM and other requests with a $ intermediate
			return false
		}
	}
	switch final {
	case 'n', 'c', 't':
		return false
	case 'h', 'l':
		if len(body) == 0 || body[0] != '?' {
			return true
		}
		n := 0
		for i := 1; i <= len(body); i++ {
			if i < len(body) && body[i] >= '0' && body[i] <= '9' {
				n = min(n*10+int(body[i]-'0'), 100000)
				continue
			}
			switch n { // at a separator or the end: one parameter read
			case 9, 1000, 1001, 1002, 1003, 1004, 1005, 1006, 1015, 1016:
				return false
			}
			n = 0
		}
	}
	return true
}
