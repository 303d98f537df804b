package recorder

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// TestDirectFile appends random runs of bytes with durable and holding
// writes, some larger than the stage: after each durable write the file
// holds exactly what was written, after a holding write a prefix of it,
// and after Close all of it. The same runs again with an alignment below
// the device's block size make the direct writes fail, and the file falls
// back to ordinary writes without losing a byte.
func TestDirectFile(t *testing.T) {
	for _, tc := range []struct {
		name     string
		align    int // 0: as createFile chose
		fallback bool
	}{
		{"direct", 0, false},
		{"fallback", 256, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "rec")
			rf, err := createFile(path)
			if err != nil {
				t.Fatal(err)
			}
			d, ok := rf.(*directFile)
			if !ok {
				if directAlign(rf.(*os.File)) != 0 {
					t.Fatal("createFile did not use direct I/O where the file system reports it")
				}
				rf.Close()
				t.Skip("the file system of the test's temporary directory has no direct I/O")
			}
			if tc.align != 0 {
				d.align = tc.align
			}
			rng := rand.New(rand.NewPCG(1, 2))
			var want []byte
			durable := 0
			for i := range 300 {
				n := rng.IntN(5000)
				if i%50 == 7 {
					n = 3<<20 + rng.IntN(1000) // more than the bulk stage
				}
				p := make([]byte, n)
				for j := range p {
					p[j] = byte(rng.Uint32())
				}
				want = append(want, p...)
				if rng.IntN(3) == 0 {
					if err := d.writeHolding(p); err != nil {
						t.Fatal(err)
					}
				} else {
					if _, err := d.Write(p); err != nil {
						t.Fatal(err)
					}
					durable = len(want)
				}
				got, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) < durable || len(got) > len(want) || !bytes.Equal(got, want[:len(got)]) {
					t.Fatalf("write %d: file has %d bytes, want a prefix of the %d written of at least %d",
						i, len(got), len(want), durable)
				}
				if durable == len(want) && len(got) != durable {
					t.Fatalf("write %d: file has %d bytes after a durable write of %d", i, len(got), durable)
				}
			}
			if err := d.Sync(); err != nil {
				t.Fatal(err)
			}
			if (d.d == nil) != tc.fallback {
				t.Errorf("fell back to ordinary writes: %v, want %v", d.d == nil, tc.fallback)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if err := d.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if _, err := d.Write([]byte("x")); err == nil {
				t.Error("Write after Close succeeded")
			}
			got, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("closed file has %d bytes, want the %d written (%v)", len(got), len(want), err)
			}
		})
	}
}
