package recorder

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestClassifyBlocks checks the vector classifier against classifyGeneric:
// every byte value at every position, then random blocks.
func TestClassifyBlocks(t *testing.T) {
	if classifyBlocks == nil {
		t.Skip("no vector classifier on this CPU")
	}
	check := func(p []byte) {
		t.Helper()
		n := len(p) / blockLen
		got, want := make([]blockMasks, n), make([]blockMasks, n)
		classifyBlocks(p, got)
		classifyGeneric(p, want)
		for k := range want {
			if got[k] != want[k] {
				t.Fatalf("block %d of %q: got %+v, want %+v", k, p[k*blockLen:(k+1)*blockLen], got[k], want[k])
			}
		}
	}
	for v := range 256 {
		p := make([]byte, 2*blockLen)
		for i := range p {
			p[i] = byte(v + i) // every value at every position
		}
		check(p)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	p := make([]byte, 50*blockLen)
	for i := range p {
		p[i] = byte(rng.IntN(256))
	}
	check(p)
}

// withClassifier runs f with classifyBlocks set to c.
func withClassifier(c func([]byte, []blockMasks), f func()) {
	saved := classifyBlocks
	classifyBlocks = c
	defer func() { classifyBlocks = saved }()
	f()
}

// cardText returns n bytes of input for the card redactor: card numbers
// (Luhn-valid or not) with spaces, dashes and escape sequences between and
// inside groups, digit runs of every length, CSI, OSC, DCS and charset
// sequences, ESC ESC, text and random bytes, so that runs, sequences and
// separators fall on every position of a 64-byte block.
func cardText(rng *rand.Rand, n int) []byte {
	var b bytes.Buffer
	seqs := []string{"\x1b[0m", "\x1b[1;32m", "\x1b[", "\x1b[38;5;123m", "\x1b]0;title 4111111111111111\x07",
		"\x1b]8;;http://x/1234567890123\x1b\\", "\x1bP1$r0m\x1b\\", "\x1b(B", "\x1b#8", "\x1b7", "\x1b\x1b[m",
		"\x1b[\x1b[1m", "\x1b[?25h", "\x1b]", "\x07", "\x1b", "\x1b\\", "[", "m"}
	cards := []string{"4111111111111111", "5500000000000004", "378282246310005", "4222222222222", "6011111111111117"}
	for b.Len() < n {
		switch rng.IntN(8) {
		case 0, 1:
			c := cards[rng.IntN(len(cards))]
			if rng.IntN(4) == 0 {
				c = c[:len(c)-1] + string(rune('0'+rng.IntN(10))) // Luhn may fail
			}
			for i := range len(c) {
				b.WriteByte(c[i])
				switch rng.IntN(10) {
				case 0:
					b.WriteByte(" -"[rng.IntN(2)])
				case 1:
					b.WriteString(seqs[rng.IntN(len(seqs))])
				case 2:
					b.WriteString("  ")
				}
			}
		case 2:
			for range 1 + rng.IntN(25) {
				b.WriteByte(byte('0' + rng.IntN(10)))
			}
		case 3:
			b.WriteString(seqs[rng.IntN(len(seqs))])
		case 4:
			b.WriteString([]string{" ", "-", "  ", " - ", "\r\n", "abc ", "x", ":", "          "}[rng.IntN(9)])
		case 5:
			fmt.Fprintf(&b, "2026-03-01 %02d:%02d:%02d pid %d ", rng.IntN(24), rng.IntN(60), rng.IntN(60), rng.IntN(1e6))
		case 6:
			for range rng.IntN(8) {
				b.WriteByte(byte(rng.IntN(256)))
			}
		case 7:
			b.WriteString("the quick brown fox jumps over the lazy dog ")
		}
	}
	return b.Bytes()[:n]
}

// TestCardFilterMatchesReference runs the redactor with the block filter
// (vector and portable masks) and without it against refCardRedactor on
// long generated input split into random writes.
func TestCardFilterMatchesReference(t *testing.T) {
	iters := 3000
	if testing.Short() {
		iters = 300
	}
	vector := classifyBlocks
	rng := rand.New(rand.NewPCG(3, 4))
	for iter := range iters {
		p := cardText(rng, rng.IntN(3000))
		maxWrite := []int{1, 7, 64, 200, 5000}[iter%5]
		var writes []int
		for i := 0; i < len(p); {
			k := min(len(p)-i, 1+rng.IntN(maxWrite))
			writes = append(writes, k)
			i += k
		}
		var ref refCardRedactor
		var want []byte
		i := 0
		for _, k := range writes {
			want = ref.process(want, p[i:i+k])
			i += k
		}
		want = ref.flush(want)
		for _, mode := range []struct {
			name     string
			classify func([]byte, []blockMasks)
		}{{"vector", vector}, {"portable", classifyGeneric}, {"no filter", nil}} {
			if mode.name == "vector" && vector == nil {
				continue
			}
			var got []byte
			var r cardRedactor
			withClassifier(mode.classify, func() {
				i := 0
				for _, k := range writes {
					got = r.process(got, p[i:i+k])
					i += k
				}
				got = r.flush(got)
			})
			if !bytes.Equal(got, want) || r.count != ref.count {
				t.Fatalf("%s, writes %v, input %q:\ngot  %q (%d)\nwant %q (%d)", mode.name, writes, p, got, r.count, want, ref.count)
			}
		}
	}
}

// FuzzCardRedactorMatchesReference checks the redactor as built (with the
// block filter where the CPU has vectors) against refCardRedactor, whole
// and split into writes.
func FuzzCardRedactorMatchesReference(f *testing.F) {
	rng := rand.New(rand.NewPCG(9, 9))
	for range 8 {
		f.Add(cardText(rng, 300), 70)
	}
	f.Add(bytes.Repeat([]byte("\x1b[31m4111\x1b[0m 1111 1111 1111 "), 5), 64)
	f.Fuzz(func(t *testing.T, p []byte, split int) {
		step := 1 + abs(split)%200
		var ref refCardRedactor
		var r cardRedactor
		var want, got []byte
		for i := 0; i < len(p); i += step {
			want = ref.process(want, p[i:min(i+step, len(p))])
			got = r.process(got, p[i:min(i+step, len(p))])
		}
		want, got = ref.flush(want), r.flush(got)
		if !bytes.Equal(got, want) || r.count != ref.count {
			t.Fatalf("step %d:\ngot  %q (%d)\nwant %q (%d)", step, got, r.count, want, ref.count)
		}
		var whole cardRedactor
		if w := whole.flush(whole.process(nil, p)); !bytes.Equal(w, want) {
			t.Fatalf("whole:\ngot  %q\nwant %q", w, want)
		}
	})
}
