package recorder

import (
	"encoding/binary"
	"math"
)

// EBML, the binary format under Matroska and WebM, encodes each element as
// an ID (1 to 4 bytes, with its length marker bits kept), a size as a
// variable-length integer ("vint": a leading 1 bit whose position gives the
// length, then the value) and the data. These helpers append elements to a
// byte slice; the WebM muxer sizes everything before it writes, so no
// element has an unknown size.

// ebmlMaxSize is the largest size a vint of 8 bytes holds (all ones is
// reserved for "unknown").
const ebmlMaxSize = 1<<56 - 2

// ebmlIDLen returns the encoded length of an element ID.
func ebmlIDLen(id uint32) int {
	switch {
	case id >= 1<<24:
		return 4
	case id >= 1<<16:
		return 3
	case id >= 1<<8:
		return 2
	}
	return 1
}

func ebmlAppendID(b []byte, id uint32) []byte {
	for i := ebmlIDLen(id) - 1; i >= 0; i-- {
		b = append(b, byte(id>>(8*i)))
	}
	return b
}

// ebmlVintLen returns the shortest vint length that holds n.
func ebmlVintLen(n uint64) int {
	l := 1
	for l < 8 && n >= 1<<(7*l)-1 {
		l++
	}
	return l
}

// ebmlAppendVint appends n as a vint of length l (1 to 8), which must hold it.
func ebmlAppendVint(b []byte, n uint64, l int) []byte {
	n |= 1 << (7 * l)
	for i := l - 1; i >= 0; i-- {
		b = append(b, byte(n>>(8*i)))
	}
	return b
}

// ebmlHeadLen returns the length of an element's ID and size fields.
func ebmlHeadLen(id uint32, size uint64) int {
	return ebmlIDLen(id) + ebmlVintLen(size)
}

// ebmlAppendHead appends an element's ID and its size in the shortest vint.
func ebmlAppendHead(b []byte, id uint32, size uint64) []byte {
	return ebmlAppendVint(ebmlAppendID(b, id), size, ebmlVintLen(size))
}

// ebmlAppendMaster appends a master element holding body.
func ebmlAppendMaster(b []byte, id uint32, body []byte) []byte {
	return append(ebmlAppendHead(b, id, uint64(len(body))), body...)
}

// ebmlUintLen returns the number of bytes of v's big-endian encoding
// without leading zeros (at least one).
func ebmlUintLen(v uint64) int {
	l := 1
	for l < 8 && v >= 1<<(8*l) {
		l++
	}
	return l
}

// ebmlAppendUint appends an unsigned integer element in the fewest bytes.
func ebmlAppendUint(b []byte, id uint32, v uint64) []byte {
	return ebmlAppendUintN(b, id, v, ebmlUintLen(v))
}

// ebmlAppendUintN appends an unsigned integer element in exactly l bytes,
// so that its length does not depend on a value computed later.
func ebmlAppendUintN(b []byte, id uint32, v uint64, l int) []byte {
	b = ebmlAppendHead(b, id, uint64(l))
	for i := l - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

func ebmlAppendString(b []byte, id uint32, s string) []byte {
	return append(ebmlAppendHead(b, id, uint64(len(s))), s...)
}

func ebmlAppendBinary(b []byte, id uint32, p []byte) []byte {
	return append(ebmlAppendHead(b, id, uint64(len(p))), p...)
}

// ebmlAppendFloat appends a float element as an 8-byte IEEE 754 double.
func ebmlAppendFloat(b []byte, id uint32, f float64) []byte {
	return binary.BigEndian.AppendUint64(ebmlAppendHead(b, id, 8), math.Float64bits(f))
}
