package recorder

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

var refCardSpecial = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t[0x1b] = true
	return
}()

// refCardRedactor masks payment card numbers in a byte stream: 13 to 19
// digits passing the Luhn check, optionally grouped by single spaces or
// dashes, with terminal escape sequences allowed anywhere in between. A
// candidate run is held back until it ends, so numbers split across writes
// are caught. All digits but the last four are replaced by '*'.
type refCardRedactor struct {
	run    []byte // held-back candidate, starting with a digit
	inRun  bool
	sep    bool // the last byte of run outside escapes was a separator
	esc    int
	count  int
	digits []int // scratch: positions of digits in run
	groups []int // scratch: group number of each digit
}

func (r *refCardRedactor) process(out, p []byte) []byte {
	i := 0
	for i < len(p) {
		if !r.inRun {
			if r.esc == escNone {
				j := i + refSkipPlain(p[i:])
				for j < len(p) && !refCardSpecial[p[j]] {
					j++
				}
				out = append(out, p[i:j]...)
				if i = j; i == len(p) {
					break
				}
				if p[i] == 0x1b {
					r.esc = escStart
					out = append(out, 0x1b)
				} else {
					r.inRun, r.sep = true, false
					r.run = append(r.run[:0], p[i])
				}
				i++
				continue
			}
			out = append(out, p[i])
			r.esc = refNextEsc(r.esc, p[i])
			i++
			continue
		}
		c := p[i]
		switch {
		case r.esc != escNone:
			r.esc = refNextEsc(r.esc, c)
		case c >= '0' && c <= '9':
			r.sep = false
		case c == 0x1b:
			r.esc = escStart
		case (c == ' ' || c == '-') && !r.sep:
			r.sep = true
		default:
			out = r.finish(out)
			continue // c is processed outside the run
		}
		r.run = append(r.run, c)
		i++
		if len(r.run) >= maxRun {
			out = r.finish(out)
		}
	}
	return out
}

// nextEsc advances the escape-sequence state by one byte.
func refNextEsc(st int, c byte) int {
	switch st {
	case escStart:
		switch c {
		case '[':
			return escCSI
		case ']', 'P', 'X', '^', '_':
			return escString
		case '(', ')', '*', '+', '#', '%', ' ':
			return escStart // designators take one more byte
		}
		return escNone
	case escCSI:
		if c >= 0x40 && c <= 0x7e {
			return escNone
		}
		return escCSI
	case escString:
		switch c {
		case 0x07:
			return escNone
		case 0x1b:
			return escStringEsc
		}
		return escString
	case escStringEsc:
		if c == '\\' {
			return escNone
		}
		// The string ends unfinished, as in xterm: ESC begins a new
		// sequence, and what follows it is on the screen.
		return refNextEsc(escStart, c)
	}
	return escNone
}

// flush releases any held-back bytes, masking what they contain.
func (r *refCardRedactor) flush(out []byte) []byte {
	if r.inRun {
		return r.finish(out)
	}
	return out
}

// finish ends the current run: it masks card numbers in it and appends it.
func (r *refCardRedactor) finish(out []byte) []byte {
	run := r.run
	r.inRun, r.sep = false, false
	// locate digits and their groups, skipping escape sequences
	r.digits, r.groups = r.digits[:0], r.groups[:0]
	st, g := escNone, 0
	for i, c := range run {
		if st != escNone {
			st = refNextEsc(st, c)
			continue
		}
		switch {
		case c == 0x1b:
			st = escStart
		case c >= '0' && c <= '9':
			r.digits = append(r.digits, i)
			r.groups = append(r.groups, g)
		case c == ' ' || c == '-':
			g++
		}
	}
	r.esc = st // a run may end inside an escape sequence (maxRun)
	if len(r.digits) >= 13 {
		r.maskCards(run)
	}
	out = append(out, run...)
	r.run = run[:0]
	return out
}

// maskCards finds, left to right, the longest span of whole digit groups
// with 13 to 19 digits that passes the Luhn check, and masks it.
func (r *refCardRedactor) maskCards(run []byte) {
	d, gs := r.digits, r.groups
	for start := 0; start < len(d); {
		if start > 0 && gs[start] == gs[start-1] {
			start++ // spans start at a group boundary
			continue
		}
		best := -1
		for end := start + 12; end < len(d) && end < start+19; end++ {
			if end+1 < len(d) && gs[end+1] == gs[end] {
				continue // spans end at a group boundary
			}
			if refLuhn(run, d[start:end+1]) {
				best = end
			}
		}
		if best < 0 {
			start++
			continue
		}
		for _, pos := range d[start : best-3] {
			run[pos] = maskByte
		}
		r.count++
		start = best + 1
	}
}

// luhn checks the Luhn sum of the digits of run at positions pos.
func refLuhn(run []byte, pos []int) bool {
	sum := 0
	double := false
	for i := len(pos) - 1; i >= 0; i-- {
		n := int(run[pos[i]] - '0')
		if double {
			n *= 2
			if n > 9 {
				n -= 9
			}
		}
		sum += n
		double = !double
	}
	return sum%10 == 0
}

// skipPlain returns how many leading bytes of p, in whole 8-byte words,
// hold no digit and no ESC; it tests eight bytes at a time.
func refSkipPlain(p []byte) int {
	n := 0
	for len(p)-n >= 8 {
		x := binary.LittleEndian.Uint64(p[n:])
		low := x &^ highs // each byte's low 7 bits
		// bytes in 0x30..0x39 among those below 0x80
		ge30 := low + (0x80-0x30)*ones
		ge3a := low + (0x80-0x3a)*ones
		digit := ge30 &^ ge3a &^ x & highs
		// bytes equal to ESC
		e := x ^ 0x1b*ones
		esc := (e - ones) &^ e & highs
		if digit|esc != 0 {
			break
		}
		n += 8
	}
	return n
}

// TestCardRedactorMatchesReference checks that cardRedactor gives the same
// output and count as refCardRedactor, the byte-at-a-time redactor it
// replaced, for random terminal-like input split into random writes.
func TestCardRedactorMatchesReference(t *testing.T) {
	alpha := []byte("0123456789012345678901234567890123456789  --\x1b[;m]P\x07\\x(#8abc\r\n")
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := range 20000 {
		n := rng.IntN(200)
		if iter%50 == 0 {
			n = rng.IntN(4000)
		}
		p := make([]byte, n)
		for i := range p {
			if rng.IntN(4) == 0 {
				p[i] = byte(rng.IntN(256))
			} else {
				p[i] = alpha[rng.IntN(len(alpha))]
			}
		}
		if iter%3 == 0 {
			copy(p[rng.IntN(n+1)/2:], "4111 1111\x1b[1m 1111-1111")
		}
		var a refCardRedactor
		var b cardRedactor
		var ga, gb []byte
		for i := 0; i < n; {
			k := min(n-i, 1+rng.IntN(40+n/4))
			ga = a.process(ga, p[i:i+k])
			gb = b.process(gb, p[i:i+k])
			i += k
		}
		ga = a.flush(ga)
		gb = b.flush(gb)
		if !bytes.Equal(ga, gb) || a.count != b.count {
			t.Fatalf("input %q\nold %q %d\nnew %q %d", p, ga, a.count, gb, b.count)
		}
	}
}
