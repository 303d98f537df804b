//go:build !purego

#include "textflag.h"

#define BCAST(c, reg) MOVL $c, AX; VMOVD AX, X0; VPBROADCASTB X0, reg

// Y = 32 bytes; LO/HI the two halves of a block. MASK stores the 64-bit mask
// of a 32-byte compare result pair at off(DI).
#define MASK(lo, hi, off) VPMOVMSKB lo, AX; VPMOVMSKB hi, BX; MOVL AX, off(DI); MOVL BX, off+4(DI)

// func classifyAVX2(p *byte, n int, out *blockMasks)
TEXT ·classifyAVX2(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ out+16(FP), DI
	BCAST(0x30, Y8)  // '0'
	BCAST(0x09, Y9)  // '9' - '0'
	BCAST(0x20, Y10) // ' '
	BCAST(0x2d, Y11) // '-'
	BCAST(0x1b, Y12) // ESC
	BCAST(0x5b, Y13) // '['
	BCAST(0x40, Y14) // first final byte of a CSI sequence
	BCAST(0x3e, Y15) // 0x7e - 0x40
	TESTQ CX, CX
	JZ done

loop:
	VMOVDQU (SI), Y0
	VMOVDQU 32(SI), Y1

	// digit: byte - '0' <= 9, unsigned
	VPSUBB Y8, Y0, Y2
	VPMINUB Y9, Y2, Y4
	VPCMPEQB Y4, Y2, Y2
	VPSUBB Y8, Y1, Y3
	VPMINUB Y9, Y3, Y5
	VPCMPEQB Y5, Y3, Y3
	MASK(Y2, Y3, 0)

	// sep: ' ' or '-'
	VPCMPEQB Y10, Y0, Y2
	VPCMPEQB Y11, Y0, Y4
	VPOR Y4, Y2, Y2
	VPCMPEQB Y10, Y1, Y3
	VPCMPEQB Y11, Y1, Y5
	VPOR Y5, Y3, Y3
	MASK(Y2, Y3, 8)

	// esc
	VPCMPEQB Y12, Y0, Y2
	VPCMPEQB Y12, Y1, Y3
	MASK(Y2, Y3, 16)

	// lbrack
	VPCMPEQB Y13, Y0, Y2
	VPCMPEQB Y13, Y1, Y3
	MASK(Y2, Y3, 24)

	// final: byte - 0x40 <= 0x3e, unsigned
	VPSUBB Y14, Y0, Y2
	VPMINUB Y15, Y2, Y4
	VPCMPEQB Y4, Y2, Y2
	VPSUBB Y14, Y1, Y3
	VPMINUB Y15, Y3, Y5
	VPCMPEQB Y5, Y3, Y3
	MASK(Y2, Y3, 32)

	ADDQ $64, SI
	ADDQ $40, DI
	DECQ CX
	JNZ loop

done:
	VZEROUPPER
	RET
