//go:build !purego

package recorder

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// The assembly stores blockMasks as five uint64s in field order.
var (
	_ [unsafe.Sizeof(blockMasks{}) - 40]struct{}
	_ [40 - unsafe.Sizeof(blockMasks{})]struct{}
)

func init() {
	if cpu.X86.HasAVX2 {
		classifyBlocks = classifyAVX2Blocks
	}
}

func classifyAVX2Blocks(p []byte, out []blockMasks) {
	if len(out) == 0 {
		return
	}
	_ = p[blockLen*len(out)-1]
	classifyAVX2(&p[0], len(out), &out[0])
}

// classifyAVX2 is classifyGeneric for n blocks at p, with AVX2.
//
//go:noescape
func classifyAVX2(p *byte, n int, out *blockMasks)
