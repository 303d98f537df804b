package recorder

import (
	"bytes"
	"fmt"
	"math/rand/v2"
)

// terminalText returns n bytes of log-like terminal output with
// timestamps, colors and, when cards is set, card numbers.
func terminalText(n int, cards bool) []byte {
	rng := rand.New(rand.NewPCG(7, 7))
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "2026-03-01T09:%02d:%02d \x1b[32mINFO\x1b[0m request handled path=/api/v1/items/%d status=200 took=%dms\r\n",
			i/60%60, i%60, rng.IntN(100000), rng.IntN(500))
		if cards && i%50 == 0 {
			b.WriteString("payment card 4111 1111 1111 1111 accepted\r\n")
		}
	}
	return b.Bytes()[:n]
}

// writerBenchText is the 16 KiB terminal write of the writer and redactor
// benchmarks: with card numbers, or with no digits at all (every digit
// turned into 'x'), so that no digit run is a candidate.
func writerBenchText(cards bool) []byte {
	data := terminalText(16<<10, cards)
	if !cards {
		data = bytes.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return 'x'
			}
			return r
		}, data)
	}
	return data
}
