package assist

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Printable returns gateway-supplied text s as it may reach the customer's
// terminal: one line of at most max runes (max > 0; longer text is cut
// and ends in "…"), without what could drive the terminal or hide what
// it shows. Escape sequences (CSI, OSC such as a clipboard write, DCS and
// the like, up to their terminator) are dropped whole; C0 and C1 controls
// and DEL are dropped, except that tabs and line breaks become spaces;
// Unicode format characters (category Cf: bidirectional overrides and
// isolates, zero-width characters) and line and paragraph separators are
// dropped; invalid UTF-8 becomes U+FFFD.
func Printable(s string, max int) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == 0x1b:
			i = skipEscape(s, i)
			continue
		case r == 0x9b || r == 0x90 || r == 0x9d || r == 0x98 || r == 0x9e || r == 0x9f:
			// C1 CSI, DCS, OSC, SOS, PM, APC: drop what they introduce too.
			i = skipC1(s, i, r == 0x9b)
			continue
		case r == '\t' || r == '\n' || r == '\r':
			r = ' '
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			continue
		case unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r):
			continue
		case r == utf8.RuneError && size == 1:
			r = utf8.RuneError
		}
		if n == max {
			return strings.TrimRight(b.String(), " ") + "…"
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// skipEscape returns the index in s after the escape sequence whose ESC
// ended before i.
func skipEscape(s string, i int) int {
	if i >= len(s) {
		return i
	}
	switch s[i] {
	case '[': // CSI: parameters and intermediates, then a final byte
		return skipCSI(s, i+1)
	case ']', 'P', 'X', '^', '_': // OSC, DCS, SOS, PM, APC: a string up to BEL or ST
		return skipString(s, i+1)
	}
	// Two-byte sequences, or ESC with intermediates then a final byte.
	for i < len(s) && s[i] >= 0x20 && s[i] <= 0x2f {
		i++
	}
	if i < len(s) && s[i] >= 0x30 && s[i] <= 0x7e {
		i++
	}
	return i
}

func skipC1(s string, i int, csi bool) int {
	if csi {
		return skipCSI(s, i)
	}
	return skipString(s, i)
}

func skipCSI(s string, i int) int {
	for i < len(s) {
		c := s[i]
		i++
		if c >= 0x40 && c <= 0x7e {
			return i
		}
		if c < 0x20 || c > 0x3f && c < 0x40 || c >= 0x80 {
			return i // not a CSI byte: the sequence is broken, drop up to here
		}
	}
	return i
}

// skipString skips a control string up to BEL, ESC \ or C1 ST, or the end.
func skipString(s string, i int) int {
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == 0x07 || r == 0x9c:
			return i + size
		case r == 0x1b:
			if i+1 < len(s) && s[i+1] == '\\' {
				return i + 2
			}
			return i + 1
		}
		i += size
	}
	return i
}
