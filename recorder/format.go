package recorder

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"

	"github.com/zeebo/blake3"
)

// Format versions, named by the header's first line. The Writer writes
// version 3; readers accept all three. Versions 1 and 2 differ only in the
// hash chain; version 3 keeps version 2's chain and puts a channel number
// in front of the body of terminal records (output, input, resize,
// keyframe).
const (
	version1 = 1 // h(n) = SHA-256(h(n-1) || frame n without its chain value)
	version2 = 2 // h(n) = BLAKE3-256(frame n without its chain value || h(n-1))
	version3 = 3 // version 2's chain; terminal records name their channel
	// writeVersion is the version the Writer writes.
	writeVersion = version3
)

// MaxChannel is the largest channel number a terminal record may carry.
const MaxChannel = 1<<31 - 1

// Frame kinds, stored in clear in each frame header.
const (
	kindSealed     byte = 1 // an AEAD-sealed record
	kindCheckpoint byte = 2 // a signed checkpoint (clear JSON + signature)
	kindEnd        byte = 3 // the signed end record (clear JSON + signature)
)

const (
	// frameHeaderLen is len(u32 length, u64 seq, i64 time, u8 kind).
	frameHeaderLen = 4 + 8 + 8 + 1
	chainLen       = 32 // SHA-256 (v1) and BLAKE3-256 (v2)
	tagLen         = 16
	sigLen         = 64
	// minFrameLen is the smallest value of the length field.
	minFrameLen = 8 + 8 + 1 + chainLen
	// maxFrameLen bounds the length field, so a reader never allocates
	// more than this for one frame.
	maxFrameLen = 16 << 20
	// maxChunk is the largest terminal or chat payload in one record;
	// larger writes are split.
	maxChunk = 32 << 10
	// MaxMediaFrame is the largest media sample a Writer accepts.
	MaxMediaFrame = 8 << 20

	footerMagic = "SGRECEND"
	footerLen   = 8 + 8

	chainContextV1 = "supportgate-recording-v1 chain\x00"
	chainContextV2 = "supportgate-recording-v2 chain\x00"
	// Version 3 keeps version 2's chain context: the header bytes it hashes
	// name the version.
	// The signature contexts keep their version 1 names in versions 2 and 3: the
	// signed header names the version, and every signed record pins a chain
	// value that depends on it.
	headerSigContext  = "supportgate-recording-v1 header\x00"
	checkpointContext = "supportgate-recording-v1 checkpoint\x00"
	endContext        = "supportgate-recording-v1 end\x00"
)

// putFrameHeader writes the clear frame header for a frame whose length
// field is l.
func putFrameHeader(b []byte, l int, seq uint64, t int64, kind byte) {
	binary.BigEndian.PutUint32(b[0:4], uint32(l))
	binary.BigEndian.PutUint64(b[4:12], seq)
	binary.BigEndian.PutUint64(b[12:20], uint64(t))
	b[20] = kind
}

type frameHeader struct {
	length uint32
	seq    uint64
	t      int64
	kind   byte
}

func parseFrameHeader(b []byte) frameHeader {
	return frameHeader{
		length: binary.BigEndian.Uint32(b[0:4]),
		seq:    binary.BigEndian.Uint64(b[4:12]),
		t:      int64(binary.BigEndian.Uint64(b[12:20])),
		kind:   b[20],
	}
}

// nonce returns the AEAD nonce for a sequence number; the data key is fresh
// for every recording, so sequence numbers never repeat under one key.
func nonce(seq uint64) [12]byte {
	var n [12]byte
	binary.BigEndian.PutUint64(n[4:], seq)
	return n
}

// sealAD returns the associated data of a sealed record: its clear frame
// header followed by the previous sealed record's tag.
func sealAD(hdr []byte, prevTag *[tagLen]byte) [frameHeaderLen + tagLen]byte {
	var ad [frameHeaderLen + tagLen]byte
	copy(ad[:], hdr[:frameHeaderLen])
	copy(ad[frameHeaderLen:], prevTag[:])
	return ad
}

// chainer computes the chain values of one format version: h(n) from
// h(n-1) and frame n without its trailing chain value.
type chainer struct {
	h hash.Hash
	// prevLast puts h(n-1) after the frame (version 2) rather than before
	// it (version 1). The frame then starts the hash input, so BLAKE3 reads
	// its whole 8 KiB blocks in place instead of copying them into its
	// buffer behind a 32-byte prefix.
	prevLast bool
	sum      [chainLen]byte // Sum's buffer; a local would escape through hash.Hash
}

func newChainer(version int) *chainer {
	if version == version1 {
		return &chainer{h: sha256.New()}
	}
	return &chainer{h: blake3.New(), prevLast: true}
}

func (c *chainer) next(prev *[chainLen]byte, frame []byte) [chainLen]byte {
	c.h.Reset()
	if c.prevLast {
		c.h.Write(frame)
		c.h.Write(prev[:])
	} else {
		c.h.Write(prev[:])
		c.h.Write(frame)
	}
	c.h.Sum(c.sum[:0])
	return c.sum
}

// headerChain returns h(0), the chain value that binds record 1 to the
// header: the version's hash of its context string and the header bytes.
func headerChain(version int, header []byte) [chainLen]byte {
	var out [chainLen]byte
	if version == version1 {
		h := sha256.New()
		h.Write([]byte(chainContextV1))
		h.Write(header)
		h.Sum(out[:0])
		return out
	}
	h := blake3.New()
	h.Write([]byte(chainContextV2))
	h.Write(header)
	h.Sum(out[:0])
	return out
}
