package recorder

import (
	"encoding/binary"
	"math/bits"
)

// The card redactor's block filter. Terminal output is full of short digit
// runs (times, ids, sizes) and escape sequences; stopping at each of them
// costs several times what sealing the bytes does. The filter classifies
// 64 bytes at a time into bit masks (with AVX2 where the CPU has it) and
// proves, with bit operations on the masks, that no candidate run starts
// in a stretch of the input, so the exact byte-wise scanner only runs where
// a card number may be.
//
// A run (see cardRedactor.extend) holds digits, single separators and whole
// escape sequences. Every byte of a run is therefore in
//
//	R = digits outside escapes | separators outside escapes not right after
//	    another one | bytes of escape sequences
//
// so a run lies inside one stretch of consecutive R bytes. A run is a
// candidate when it has 13 or more digits, or when it reaches the end of
// the input (it is held back). The filter skips every stretch with fewer
// than 13 digits outside escape sequences that ends before the end of the
// input, and every stretch without such digits; where a stretch may hold a
// candidate, it stops at the stretch's start and the exact scanner goes on
// from there. The escape-sequence bytes come from the same state machine
// as the scanner's (nextEsc), evaluated on the masks.

// blockMasks has one bit per byte of a 64-byte block (bit i: byte i) for
// each byte class the filter needs.
type blockMasks struct {
	digit  uint64 // '0' to '9'
	sep    uint64 // ' ' or '-'
	esc    uint64 // ESC
	lbrack uint64 // '['
	final  uint64 // 0x40 to 0x7e, the bytes that end a CSI sequence
}

const (
	blockLen = 64
	// filterBlocks is how many blocks are classified at a time; the filter
	// stops at the first possible candidate, so this bounds wasted work.
	filterBlocks = 8
	// minCard is the fewest digits of a card number.
	minCard = 13
)

// classifyBlocks fills out[k] with the masks of p[64k:64k+64]; p holds
// 64*len(out) bytes. It is nil where no vector implementation exists; the
// scanner then works without the filter (classifyGeneric, below, is slower
// than that scanner and serves as the tests' reference).
var classifyBlocks func(p []byte, out []blockMasks)

// classifyGeneric is classifyBlocks in portable Go, eight bytes at a time.
func classifyGeneric(p []byte, out []blockMasks) {
	for k := range out {
		var m blockMasks
		for w := range 8 {
			x := binary.LittleEndian.Uint64(p[k*blockLen+w*8:])
			low := x &^ highs
			sh := uint(w * 8)
			m.digit |= gatherHighs(bytesInRange(x, low, '0', '9')) << sh
			m.sep |= gatherHighs(bytesEqual(x, low, ' ')|bytesEqual(x, low, '-')) << sh
			m.esc |= gatherHighs(bytesEqual(x, low, 0x1b)) << sh
			m.lbrack |= gatherHighs(bytesEqual(x, low, '[')) << sh
			m.final |= gatherHighs(bytesInRange(x, low, 0x40, 0x7e)) << sh
		}
		out[k] = m
	}
}

// bytesInRange sets the high bit of each byte of x in [lo, hi] (hi < 0x80);
// low is x without its high bits.
func bytesInRange(x, low uint64, lo, hi byte) uint64 {
	return (low + (0x80-uint64(lo))*ones) &^ (low + (0x7f-uint64(hi))*ones) &^ x & highs
}

// bytesEqual sets the high bit of each byte of x equal to c (c < 0x80).
func bytesEqual(x, low uint64, c byte) uint64 {
	t := low ^ uint64(c)*ones
	return ^((t + 0x7f*ones) | x) & highs
}

// gatherHighs packs the high bits of the eight bytes of m into one byte.
func gatherHighs(m uint64) uint64 {
	return (m >> 7) * 0x0102040810204080 >> 56
}

// lowBits returns a mask of bits 0 to n-1 (0 <= n <= 64).
func lowBits(n int) uint64 { return uint64(1)<<uint(n) - 1 }

// bitRange returns a mask of bits s to e-1.
func bitRange(s, e int) uint64 { return lowBits(e) &^ lowBits(s) }

// csiBits returns the bits of a block that belong to escape sequences when
// the block starts outside any sequence and every ESC in it starts a CSI
// sequence (ESC '[') that ends in the block; ok is false otherwise. A CSI
// sequence ends at the first final byte after its '['. Adding a one just
// past each '[' to the mask of non-final bytes carries up to that byte.
func csiBits(m *blockMasks) (x uint64, ok bool) {
	csi := m.esc & (m.lbrack >> 1)
	if m.esc != csi || csi>>62 != 0 {
		return 0, false // not all CSI, or one whose '[' is in the next block
	}
	nf := ^m.final
	sum, carry := bits.Add64(nf, csi<<2, 0)
	ends := sum &^ nf
	// A carry out of the block is a sequence that does not end in it. An
	// ESC '[' whose '[' is the final byte of the sequence before is not a
	// start.
	if carry != 0 || csi&(ends>>1) != 0 {
		return 0, false
	}
	return ends<<1 - csi, true
}

// escapeBits returns the bits of the n-byte block at p[i:] that belong to
// escape sequences, given the escape state at its start, and the state
// after it. It follows nextEsc a sequence at a time.
func escapeBits(m *blockMasks, st int, p []byte, i, n int) (uint64, int) {
	var x uint64
	for pos := 0; pos < n; {
		switch st {
		case escNone:
			rest := m.esc >> uint(pos)
			if rest == 0 {
				return x, st
			}
			pos += bits.TrailingZeros64(rest)
			x |= 1 << uint(pos)
			st = escStart
			pos++
		case escCSI:
			rest := m.final >> uint(pos)
			if rest == 0 {
				return x | bitRange(pos, n), st
			}
			f := pos + bits.TrailingZeros64(rest)
			x |= bitRange(pos, f+1)
			st = escNone
			pos = f + 1
		default:
			x |= 1 << uint(pos)
			st = nextEsc(st, p[i+pos])
			pos++
		}
	}
	return x, st
}

// filter returns the start k >= i of the first stretch of p[i:] that may
// hold a candidate run, or len(p), and sets r.esc to the escape state at k.
// No run that starts in p[i:k] is a candidate or goes on past k.
func (r *cardRedactor) filter(p []byte, i int) int {
	from := i
	st := r.esc
	var (
		carrying  bool   // a stretch reaches the end of the last block
		runStart  int    // where that stretch starts
		runDigits int    // its digits outside escape sequences so far
		sepBefore uint64 // 1 if the byte before the block is a separator
	)
	stopAt := func(k int) int {
		if k != from {
			r.esc = escNone // the byte before k is outside any sequence
		}
		return k
	}
	for i < len(p) {
		ms := r.masks[:min((len(p)-i)/blockLen, filterBlocks)]
		if len(ms) > 0 {
			classifyBlocks(p[i:i+blockLen*len(ms)], ms)
		} else {
			n := copy(r.block[:], p[i:])
			clear(r.block[n:])
			ms = r.masks[:1]
			classifyBlocks(r.block[:], ms)
		}
		for k := range ms {
			m := &ms[k]
			n := min(blockLen, len(p)-i)
			last := i+n == len(p)
			var x uint64
			if st != escNone || m.esc != 0 {
				var ok bool
				if st == escNone {
					x, ok = csiBits(m)
				}
				if !ok {
					x, st = escapeBits(m, st, p, i, n)
				}
			}
			d := m.digit &^ x
			sep := m.sep &^ x
			single := sep &^ (sep<<1 | sepBefore)
			sepBefore = sep >> 63
			run := d | single | x // zero past n: padding is not in any class
			lo := 0               // bits below lo continue the carried stretch
			if carrying {
				l := bits.TrailingZeros64(^run) // <= n: run is zero past n
				cnt := runDigits + bits.OnesCount64(d&^(^uint64(0)<<uint(l)))
				if cnt >= minCard || (l >= n && last && cnt > 0) {
					return stopAt(runStart)
				}
				if l >= n && !last {
					runDigits = cnt
					i += n
					continue
				}
				carrying, lo = false, l
			}
			run &^= lowBits(lo)
			// stretches of 13 or more bytes: bit s of long is set when
			// bits s to s+12 of run are
			long := run & (run >> 1)
			long &= long >> 2
			long &= long >> 4
			long &= long >> 5
			for long != 0 {
				s := bits.TrailingZeros64(long)
				e := s + bits.TrailingZeros64(^(run >> uint(s)))
				if e >= n && !last {
					break // it reaches the next block: carried below
				}
				if cnt := bits.OnesCount64(d & bitRange(s, e)); cnt >= minCard || (e >= n && cnt > 0) {
					return stopAt(i + s)
				}
				long &^= bitRange(s, e)
			}
			if run>>uint(n-1)&1 != 0 {
				// the stretch that reaches the end of the block
				s := n - bits.LeadingZeros64(^(run << uint(blockLen-n)))
				cnt := bits.OnesCount64(d >> uint(s)) // d is zero past n
				if cnt >= minCard || (last && cnt > 0) {
					return stopAt(i + s)
				}
				carrying, runStart, runDigits = true, i+s, cnt
			}
			i += n
		}
	}
	r.esc = st
	return len(p)
}
