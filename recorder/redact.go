package recorder

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"regexp"
	"unicode/utf8"
)

// RedactConfig configures redaction, applied before encryption to terminal
// output, terminal input and chat. Card numbers are redacted unless
// Disabled is set.
type RedactConfig struct {
	// Disabled turns all redaction off: terminal bytes and chat are
	// recorded as they are, card numbers included, and Patterns are
	// ignored. The zero value redacts, as DESIGN.md section 5 requires;
	// Disabled is for deployments that decide their sessions carry no card
	// data, and for measuring the writer without the redactor. Such a
	// recording starts with the event redaction.disabled. No gateway
	// configuration sets it.
	Disabled bool
	// Patterns are extra expressions to mask. They are matched line by
	// line on the raw terminal bytes (a partial line is held back until its
	// newline, 4 KiB or Close) and on whole chat messages.
	Patterns []*regexp.Regexp
}

const (
	maxRun         = 1024 // bytes of a candidate card number held back
	maxPendingLine = 4096 // bytes of a partial line held back for Patterns
	maskByte       = '*'
)

// escape-sequence states of the card redactor
const (
	escNone = iota
	escStart
	escCSI
	escString
	escStringEsc
)

var cardSpecial = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t[0x1b] = true
	return
}()

// cardRedactor masks payment card numbers in a byte stream: 13 to 19
// digits passing the Luhn check, optionally grouped by single spaces or
// dashes, with terminal escape sequences allowed anywhere in between. A
// candidate run is held back until it ends, so numbers split across writes
// are caught. All digits but the last four are replaced by '*'.
type cardRedactor struct {
	run    []byte // held-back candidate, starting with a digit
	inRun  bool
	nd     int  // digits in run outside escapes
	sep    bool // the last byte of run outside escapes was a separator
	esc    int
	count  int
	digits []int // scratch: positions of digits in run
	groups []int // scratch: group number of each digit

	masks [filterBlocks]blockMasks // scratch: the filter's block masks
	block [blockLen]byte           // scratch: the filter's last, short block
}

func (r *cardRedactor) process(out, p []byte) []byte {
	i := 0
	if r.inRun {
		i = r.extend(p, 0, maxRun-len(r.run))
		r.run = append(r.run, p[:i]...)
		if i == len(p) && len(r.run) < maxRun {
			return out
		}
		out = r.finish(out) // p[i], if any, is processed outside the run
	}
	// Bytes from start to i pass through unchanged; they are appended in
	// one piece when a run must be held back or masked, or at the end.
	start := i
	for {
		if i = r.skip(p, i); i == len(p) {
			break
		}
		// A digit outside escape sequences starts a run. Most runs are
		// short numbers ended by a byte that cannot continue them.
		j, lim := i+1, min(len(p), i+maxRun)
		for j < lim && p[j]-'0' <= 9 {
			j++
		}
		if j < lim && j-i < 13 {
			if c := p[j]; c != ' ' && c != '-' && c != 0x1b {
				i = j
				continue
			}
		}
		r.sep, r.nd = false, j-i
		j = r.extend(p, j, maxRun-(j-i))
		if j == len(p) && j-i < maxRun {
			// it may go on in the next write: hold it back
			out = append(out, p[start:i]...)
			r.inRun = true
			r.run = append(r.run[:0], p[i:]...)
			return out
		}
		if r.nd >= 13 {
			out = append(out, p[start:i]...)
			r.inRun = true
			r.run = append(r.run[:0], p[i:j]...)
			out = r.finish(out)
			start = j
		}
		i = j
	}
	return append(out, p[start:]...)
}

// extend returns the end of a run that continues at p[i], looking at no
// more than n bytes, and advances the run state over it.
func (r *cardRedactor) extend(p []byte, i, n int) int {
	end := min(len(p), i+n)
	esc, sep, nd := r.esc, r.sep, r.nd
	for ; i < end; i++ {
		c := p[i]
		switch {
		case esc != escNone:
			esc = nextEsc(esc, c)
		case c-'0' <= 9:
			sep = false
			nd++
		case c == 0x1b:
			esc = escStart
		case (c == ' ' || c == '-') && !sep:
			sep = true
		default:
			r.esc, r.sep, r.nd = esc, sep, nd
			return i
		}
	}
	r.esc, r.sep, r.nd = esc, sep, nd
	return i
}

// skip returns the index of the first digit outside escape sequences in
// p[i:] that may start a candidate run, or len(p), advancing the escape
// state over what it skips. It may return a digit whose run is short.
func (r *cardRedactor) skip(p []byte, i int) int {
	if classifyBlocks != nil && len(p)-i >= blockLen {
		i = r.filter(p, i)
	}
	for i < len(p) {
		switch r.esc {
		case escNone:
			i += nextSpecial(p[i:])
			if i == len(p) || p[i] != 0x1b {
				return i
			}
			r.esc = escStart
		case escCSI:
			for i < len(p) && (p[i] < 0x40 || p[i] > 0x7e) {
				i++ // parameter and intermediate bytes
			}
			if i == len(p) {
				return i
			}
			r.esc = escNone
		default:
			r.esc = nextEsc(r.esc, p[i])
		}
		i++
	}
	return i
}

// nextEsc advances the escape-sequence state by one byte.
func nextEsc(st int, c byte) int {
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
		return nextEsc(escStart, c)
	}
	return escNone
}

// flush releases any held-back bytes, masking what they contain.
func (r *cardRedactor) flush(out []byte) []byte {
	if r.inRun {
		return r.finish(out)
	}
	return out
}

// finish ends the current run: it masks card numbers in it and appends it.
func (r *cardRedactor) finish(out []byte) []byte {
	run := r.run
	r.inRun, r.sep = false, false
	if r.nd < 13 {
		// too few digits for a card; r.esc is already the state at its end
		out = append(out, run...)
		r.run = run[:0]
		return out
	}
	// locate digits and their groups, skipping escape sequences
	r.digits, r.groups = r.digits[:0], r.groups[:0]
	st, g := escNone, 0
	for i, c := range run {
		if st != escNone {
			st = nextEsc(st, c)
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
func (r *cardRedactor) maskCards(run []byte) {
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
			if luhn(run, d[start:end+1]) {
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
func luhn(run []byte, pos []int) bool {
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

// patternRedactor masks configured patterns line by line.
type patternRedactor struct {
	pats    []*regexp.Regexp
	partial []byte
	count   int
}

func (r *patternRedactor) process(out, p []byte) []byte {
	nl := bytes.LastIndexByte(p, '\n')
	if nl < 0 {
		r.partial = append(r.partial, p...)
		if len(r.partial) >= maxPendingLine {
			return r.flush(out)
		}
		return out
	}
	line := append(r.partial, p[:nl+1]...)
	out = append(out, r.mask(line)...)
	r.partial = append(line[:0], p[nl+1:]...)
	return out
}

func (r *patternRedactor) flush(out []byte) []byte {
	out = append(out, r.mask(r.partial)...)
	r.partial = r.partial[:0]
	return out
}

func (r *patternRedactor) mask(b []byte) []byte {
	for _, re := range r.pats {
		b = re.ReplaceAllFunc(b, func(m []byte) []byte {
			r.count++
			return bytes.Repeat([]byte{maskByte}, utf8.RuneCount(m))
		})
	}
	return b
}

// streamRedactor chains the card redactor and the pattern redactor for one
// direction of a terminal stream.
type streamRedactor struct {
	card cardRedactor
	pat  *patternRedactor
	tmp  []byte
}

// newStreamRedactor returns a redactor for one direction of a terminal
// stream, or nil when redaction is disabled.
func newStreamRedactor(cfg RedactConfig) *streamRedactor {
	if cfg.Disabled {
		return nil
	}
	s := &streamRedactor{}
	if len(cfg.Patterns) > 0 {
		s.pat = &patternRedactor{pats: cfg.Patterns}
	}
	return s
}

// process appends the redacted form of p to out; some bytes may be held
// back until later input or flush.
func (s *streamRedactor) process(out, p []byte) []byte {
	if s.pat == nil {
		return s.card.process(out, p)
	}
	s.tmp = s.card.process(s.tmp[:0], p)
	return s.pat.process(out, s.tmp)
}

func (s *streamRedactor) flush(out []byte) []byte {
	if s.pat == nil {
		return s.card.flush(out)
	}
	s.tmp = s.card.flush(s.tmp[:0])
	out = s.pat.process(out, s.tmp)
	return s.pat.flush(out)
}

// held appends the redacted form of what s holds back, as flush would
// release it now, and leaves s as it is.
func (s *streamRedactor) held(out []byte) []byte {
	c := &s.card
	card := cardRedactor{run: bytes.Clone(c.run), inRun: c.inRun, nd: c.nd, sep: c.sep, esc: c.esc}
	if s.pat == nil {
		return card.flush(out)
	}
	pat := patternRedactor{pats: s.pat.pats, partial: bytes.Clone(s.pat.partial)}
	return pat.flush(pat.process(out, card.flush(nil)))
}

func (s *streamRedactor) count() int {
	if s == nil {
		return 0
	}
	n := s.card.count
	if s.pat != nil {
		n += s.pat.count
	}
	return n
}

// redactText redacts a whole message and returns it with the number of
// redactions.
func redactText(cfg RedactConfig, text string) (string, int) {
	if cfg.Disabled {
		return text, 0
	}
	s := newStreamRedactor(cfg)
	out := s.process(nil, []byte(text))
	out = s.flush(out)
	return string(out), s.count()
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// nextSpecial returns the index of the first digit or ESC in p, or len(p);
// it tests eight bytes at a time.
func nextSpecial(p []byte) int {
	n := 0
	for ; len(p)-n >= 8; n += 8 {
		x := binary.LittleEndian.Uint64(p[n:])
		low := x &^ highs // each byte's low 7 bits
		// bytes in 0x30..0x39 among those below 0x80 (exact: no carries)
		ge30 := low + (0x80-0x30)*ones
		ge3a := low + (0x80-0x3a)*ones
		digit := ge30 &^ ge3a &^ x & highs
		// bytes equal to ESC; a borrow can only mark bytes above a true
		// match, so the lowest mark is exact
		e := x ^ 0x1b*ones
		esc := (e - ones) &^ e & highs
		if m := digit | esc; m != 0 {
			return n + bits.TrailingZeros64(m)/8
		}
	}
	for n < len(p) && !cardSpecial[p[n]] {
		n++
	}
	return n
}
