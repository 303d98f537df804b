// Command vmprobe measures how steady this machine's cores are, so that a
// benchmark figure can be read against the machine it came from.
//
// Every interval it seals 16 KiB records with ChaCha20-Poly1305 (the
// recorder's AEAD, AVX2-bound like the relay's and the TLS stack's
// ciphers) on one goroutine for half the interval, then on two goroutines
// at once for the other half, and prints the single-goroutine rate and how
// much the two together got done relative to it (2.0: two whole cores).
// At the end it prints the spread of both.
//
//	go run ./bench/vmprobe -duration 30s
//
// On an idle machine the single rate should hold within a few per cent and
// the pair near 2.0; on a shared VM neither does, and a benchmark whose
// ratio moves by as much as these figures tells nothing about the code.
package main

import (
	"crypto/cipher"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

func main() {
	duration := flag.Duration("duration", 20*time.Second, "how long to measure")
	interval := flag.Duration("interval", time.Second, "length of one sample (half single, half pair)")
	flag.Parse()
	if err := run(os.Stdout, *duration, *interval); err != nil {
		fmt.Fprintln(os.Stderr, "vmprobe:", err)
		os.Exit(1)
	}
}

// sample is one interval's figures.
type sample struct {
	single float64 // MB/s sealed by one goroutine
	pair   float64 // MB/s sealed by two at once, over single
}

func run(w io.Writer, duration, interval time.Duration) error {
	if interval <= 0 || duration < interval {
		return fmt.Errorf("need 0 < interval <= duration, got %v and %v", interval, duration)
	}
	aead, err := chacha20poly1305.New(make([]byte, chacha20poly1305.KeySize))
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%8s %12s %10s\n", "t", "single MB/s", "pair x")
	var samples []sample
	start := time.Now()
	for range duration / interval {
		single := sealRate(aead, 1, interval/2)
		pair := sealRate(aead, 2, interval/2) / single
		samples = append(samples, sample{single, pair})
		fmt.Fprintf(w, "%8.1f %12.0f %10.2f\n", time.Since(start).Seconds(), single, pair)
	}
	singles := make([]float64, len(samples))
	pairs := make([]float64, len(samples))
	for i, s := range samples {
		singles[i], pairs[i] = s.single, s.pair
	}
	fmt.Fprintf(w, "single MB/s: %s\npair x:      %s\n", spread(singles), spread(pairs))
	return nil
}

// spread describes values by their minimum, median and maximum.
func spread(v []float64) string {
	s := slices.Clone(v)
	slices.Sort(s)
	return fmt.Sprintf("min %.2f median %.2f max %.2f (%d samples)", s[0], s[len(s)/2], s[len(s)-1], len(s))
}

const recordSize = 16 << 10

// sealRate seals records with aead on n goroutines for about d and returns
// the MB/s they sealed together.
func sealRate(aead cipher.AEAD, n int, d time.Duration) float64 {
	var wg sync.WaitGroup
	bytes := make([]int64, n)
	start := time.Now()
	for i := range n {
		wg.Go(func() { bytes[i] = seal(aead, d) })
	}
	wg.Wait()
	var total int64
	for _, b := range bytes {
		total += b
	}
	return float64(total) / time.Since(start).Seconds() / 1e6
}

// seal seals 16 KiB records, each under its own nonce, until d has passed,
// and returns the bytes sealed.
func seal(aead cipher.AEAD, d time.Duration) int64 {
	buf := make([]byte, recordSize+aead.Overhead())
	nonce := make([]byte, aead.NonceSize())
	deadline := time.Now().Add(d)
	var n int64
	for time.Now().Before(deadline) {
		for range 16 {
			nonce[0]++
			aead.Seal(buf[:0], nonce, buf[:recordSize], nil)
		}
		n += 16 * recordSize
	}
	return n
}
