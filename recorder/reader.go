package recorder

import (
	"bufio"
	"bytes"
	"crypto/cipher"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"
)

// Reader reads a recording, verifying every frame as it goes: sequence,
// hash chain, AEAD, checkpoint and end signatures. It is not safe for
// concurrent use.
type Reader struct {
	ra     io.ReaderAt
	size   int64
	closer io.Closer
	hdr    Header
	hdrLen int64
	h0     [chainLen]byte
	aead   cipher.AEAD // nil when verifying without a key

	br      *bufio.Reader
	off     int64
	seq     uint64 // next expected record
	chain   [chainLen]byte
	prevTag [tagLen]byte
	lastT   int64
	hasher  *chainer
	buf     []byte
	done    error // sticky: io.EOF, *CutShortError, *TamperError

	signed      uint64 // last record covered by a signature
	checkpoints int
	stats       Stats
	endSeen     bool

	index    []IndexEntry // from loadIndex
	indexed  bool
	total    time.Duration
	complete bool
}

// Open opens a recording for reading with one of the identities that the
// data key was wrapped to.
func Open(ra io.ReaderAt, size int64, identities ...age.Identity) (*Reader, error) {
	if len(identities) == 0 {
		return nil, errors.New("recorder: an identity is required to decrypt")
	}
	r, err := newReader(ra, size)
	if err != nil {
		return nil, err
	}
	key, err := unwrapKey(r.hdr.WrappedKey, identities)
	if err != nil {
		return nil, fmt.Errorf("recorder: unwrapping data key: %w", err)
	}
	r.aead, err = chacha20poly1305.New(key)
	clear(key)
	if err != nil {
		return nil, fmt.Errorf("recorder: %w", err)
	}
	return r, nil
}

// OpenFile opens the recording at path; Close closes the file.
func OpenFile(path string, identities ...age.Identity) (*Reader, error) {
	f, size, err := openSized(path)
	if err != nil {
		return nil, err
	}
	r, err := Open(f, size, identities...)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.closer = f
	return r, nil
}

func openSized(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("recorder: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("recorder: %w", err)
	}
	return f, st.Size(), nil
}

// Close closes the file if OpenFile opened it.
func (r *Reader) Close() error {
	if r.closer != nil {
		c := r.closer
		r.closer = nil
		return c.Close()
	}
	return nil
}

func newReader(ra io.ReaderAt, size int64) (*Reader, error) {
	head := make([]byte, min(size, maxHeader))
	if _, err := ra.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("recorder: reading header: %w", err)
	}
	if headerVersion(head) == 0 {
		return nil, errors.New("recorder: not a supportgate recording, or a newer format version")
	}
	hdr, n, err := parseHeader(head)
	if err != nil {
		return nil, &TamperError{Record: 0, Reason: err.Error()}
	}
	r := &Reader{ra: ra, size: size, hdr: hdr, hdrLen: int64(n), hasher: newChainer(hdr.Version)}
	r.h0 = headerChain(hdr.Version, head[:n])
	r.rewind()
	return r, nil
}

// Header returns the recording's header.
func (r *Reader) Header() Header { return r.hdr }

// rewind positions the reader at record 1.
func (r *Reader) rewind() {
	r.position(r.hdrLen, 1, r.h0[:], r.h0[:tagLen], 0)
}

func (r *Reader) position(off int64, seq uint64, chain, prevTag []byte, t int64) {
	r.off, r.seq, r.lastT, r.done = off, seq, t, nil
	copy(r.chain[:], chain)
	copy(r.prevTag[:], prevTag)
	sr := io.NewSectionReader(r.ra, off, r.size-off)
	if r.br == nil {
		r.br = bufio.NewReaderSize(sr, 256<<10)
	} else {
		r.br.Reset(sr)
	}
}

func (r *Reader) tamper(seq uint64, format string, args ...any) error {
	r.done = &TamperError{Record: seq, Reason: fmt.Sprintf(format, args...)}
	return r.done
}

func (r *Reader) cutShort(reason string) error {
	r.done = &CutShortError{Records: r.seq - 1, Signed: r.signed, Reason: reason}
	return r.done
}

// Next returns the next data record. Checkpoints and the end record are
// verified and skipped. At the verified end it returns io.EOF; a recording
// without an end record ends with a *CutShortError, a bad record with a
// *TamperError. Record.Data is valid until the next call.
func (r *Reader) Next() (Record, error) {
	for {
		kind, t, payload, err := r.nextFrame()
		if err != nil {
			return Record{}, err
		}
		if kind != kindSealed {
			continue
		}
		seq := r.seq - 1
		if r.aead == nil {
			return Record{Seq: seq, Time: time.Duration(t)}, nil
		}
		rec, err := decodeRecord(payload, r.hdr.Version)
		if err != nil {
			return Record{}, r.tamper(seq, "%v", err)
		}
		rec.Seq, rec.Time = seq, time.Duration(t)
		return rec, nil
	}
}

// nextFrame reads and verifies one frame. For a sealed frame it returns
// the plaintext (when keyed).
func (r *Reader) nextFrame() (kind byte, t int64, payload []byte, err error) {
	if r.done != nil {
		return 0, 0, nil, r.done
	}
	seq := r.seq
	rem := r.size - r.off
	if rem == 0 {
		return 0, 0, nil, r.cutShort("no end record")
	}
	if rem < 4 {
		return 0, 0, nil, r.cutShort(fmt.Sprintf("record %d is incomplete", seq))
	}
	if cap(r.buf) < frameHeaderLen {
		r.buf = make([]byte, 64<<10)
	}
	if _, err := io.ReadFull(r.br, r.buf[:4]); err != nil {
		return 0, 0, nil, fmt.Errorf("recorder: record %d: %w", seq, err)
	}
	l := int64(binary.BigEndian.Uint32(r.buf[:4]))
	switch {
	case l < minFrameLen:
		return 0, 0, nil, r.tamper(seq, "malformed frame length %d", l)
	case 4+l > rem:
		return 0, 0, nil, r.cutShort(fmt.Sprintf("record %d is incomplete", seq))
	case l > maxFrameLen:
		return 0, 0, nil, r.tamper(seq, "frame length %d exceeds the limit", l)
	}
	if int64(cap(r.buf)) < 4+l {
		nb := make([]byte, 4+l)
		copy(nb, r.buf[:4])
		r.buf = nb
	}
	f := r.buf[:4+l]
	if _, err := io.ReadFull(r.br, f[4:]); err != nil {
		return 0, 0, nil, fmt.Errorf("recorder: record %d: %w", seq, err)
	}
	fh := parseFrameHeader(f)
	if fh.seq != seq {
		return 0, 0, nil, r.tamper(seq, "expected record %d, found record %d (dropped, reordered or spliced)", seq, fh.seq)
	}
	body := f[:len(f)-chainLen]
	sum := r.hasher.next(&r.chain, body)
	if !bytes.Equal(sum[:], f[len(f)-chainLen:]) {
		return 0, 0, nil, r.tamper(seq, "hash chain mismatch (record altered, or spliced from another recording)")
	}
	if fh.t < r.lastT {
		return 0, 0, nil, r.tamper(seq, "time goes backwards")
	}
	payload = body[frameHeaderLen:]
	switch fh.kind {
	case kindSealed:
		if len(payload) < tagLen+1 {
			return 0, 0, nil, r.tamper(seq, "sealed record too short")
		}
		var tag [tagLen]byte
		copy(tag[:], payload[len(payload)-tagLen:])
		if r.aead != nil {
			ad := sealAD(f, &r.prevTag)
			nc := nonce(seq)
			pt, err := r.aead.Open(payload[:0], nc[:], payload, ad[:])
			if err != nil {
				return 0, 0, nil, r.tamper(seq, "authentication failed (record altered, reordered or spliced)")
			}
			payload = pt
		}
		r.prevTag = tag
	case kindCheckpoint, kindEnd:
		if err := r.checkSigned(seq, fh.kind, f, payload); err != nil {
			return 0, 0, nil, err
		}
	default:
		return 0, 0, nil, r.tamper(seq, "unknown frame kind %d", fh.kind)
	}
	r.chain = sum
	r.lastT = fh.t
	r.seq++
	r.off += 4 + l
	if fh.kind == kindEnd {
		if err := r.checkFooter(seq, r.off-4-l); err != nil {
			return 0, 0, nil, err
		}
		r.done = io.EOF
	}
	return fh.kind, fh.t, payload, nil
}

// checkSigned verifies a checkpoint or end record against the chain.
func (r *Reader) checkSigned(seq uint64, kind byte, f, payload []byte) error {
	name, ctx := "checkpoint", checkpointContext
	if kind == kindEnd {
		name, ctx = "end record", endContext
	}
	body, err := verifySigned(r.hdr, ctx, f, payload)
	if err != nil {
		return r.tamper(seq, "%s: %v", name, err)
	}
	if body.Chain != hex.EncodeToString(r.chain[:]) || body.Records != seq-1 {
		return r.tamper(seq, "signed %s does not match the hash chain (records before it were altered, dropped or replaced)", name)
	}
	r.signed = seq
	r.checkpoints++
	r.stats = body.Stats
	if kind == kindEnd {
		r.endSeen = true
	}
	return nil
}

// verifySigned checks the signature of a checkpoint or end frame f and
// parses its JSON.
func verifySigned(hdr Header, ctx string, f, payload []byte) (*signedBody, error) {
	if len(payload) < sigLen+2 {
		return nil, errors.New("too short")
	}
	js := payload[:len(payload)-sigLen]
	sig := payload[len(payload)-sigLen:]
	msg := append([]byte(ctx), f[:frameHeaderLen+len(js)]...)
	if !ed25519.Verify(hdr.Signer, msg, sig) {
		return nil, errors.New("signature does not verify")
	}
	var body signedBody
	if err := json.Unmarshal(js, &body); err != nil {
		return nil, errors.New("malformed")
	}
	if body.RecordingID != hdr.RecordingID {
		return nil, errors.New("belongs to another recording")
	}
	return &body, nil
}

func (r *Reader) checkFooter(seq uint64, endOff int64) error {
	switch rem := r.size - r.off; {
	case rem < footerLen:
		return r.tamper(seq, "footer after the end record is missing")
	case rem > footerLen:
		return r.tamper(seq+1, "unexpected data after the end record")
	}
	var foot [footerLen]byte
	if _, err := io.ReadFull(r.br, foot[:]); err != nil {
		return fmt.Errorf("recorder: footer: %w", err)
	}
	if string(foot[:8]) != footerMagic || int64(binary.BigEndian.Uint64(foot[8:])) != endOff {
		return r.tamper(seq+1, "malformed footer")
	}
	return nil
}

// Stats returns the counters of the last verified checkpoint or end record.
func (r *Reader) Stats() Stats { return r.stats }

// loadIndex reads the time index: from the signed end record found through
// the footer, or for a recording cut short by walking the frame headers and
// verifying the checkpoints' signatures.
func (r *Reader) loadIndex() error {
	if r.indexed {
		return nil
	}
	if err := r.indexFromEnd(); err != nil {
		if err := r.indexFromScan(); err != nil {
			return err
		}
	}
	r.indexed = true
	return nil
}

func (r *Reader) indexFromEnd() error {
	if r.size < r.hdrLen+footerLen {
		return errors.New("no footer")
	}
	var foot [footerLen]byte
	if _, err := r.ra.ReadAt(foot[:], r.size-footerLen); err != nil {
		return err
	}
	off := int64(binary.BigEndian.Uint64(foot[8:]))
	if string(foot[:8]) != footerMagic || off < r.hdrLen || off > r.size-footerLen-4-minFrameLen {
		return errors.New("no footer")
	}
	// The footer is unsigned: check the frame header it points at before
	// allocating, so a forged offset cannot cost the file's size in memory.
	var hb [frameHeaderLen]byte
	if _, err := r.ra.ReadAt(hb[:], off); err != nil {
		return err
	}
	fh := parseFrameHeader(hb[:])
	if fh.kind != kindEnd || fh.length < minFrameLen || fh.length > maxFrameLen ||
		off+4+int64(fh.length) != r.size-footerLen {
		return errors.New("no end record")
	}
	f := make([]byte, 4+int64(fh.length))
	if _, err := r.ra.ReadAt(f, off); err != nil {
		return err
	}
	body, err := verifySigned(r.hdr, endContext, f, f[frameHeaderLen:len(f)-chainLen])
	if err != nil {
		return &TamperError{Record: fh.seq, Reason: "end record: " + err.Error()}
	}
	r.index, r.total, r.complete = body.Keyframes, time.Duration(fh.t), true
	return nil
}

func (r *Reader) indexFromScan() error {
	r.index = nil
	var hb [frameHeaderLen]byte
	var f []byte // one checkpoint frame at a time
	for off := r.hdrLen; off+frameHeaderLen <= r.size; {
		if _, err := r.ra.ReadAt(hb[:], off); err != nil {
			return fmt.Errorf("recorder: %w", err)
		}
		fh := parseFrameHeader(hb[:])
		end := off + 4 + int64(fh.length)
		if fh.length < minFrameLen || fh.length > maxFrameLen || end > r.size {
			break
		}
		r.total = time.Duration(fh.t)
		if fh.kind == kindCheckpoint {
			if int64(cap(f)) < end-off {
				f = make([]byte, end-off)
			}
			f = f[:end-off]
			if _, err := r.ra.ReadAt(f, off); err != nil {
				return fmt.Errorf("recorder: %w", err)
			}
			body, err := verifySigned(r.hdr, checkpointContext, f, f[frameHeaderLen:len(f)-chainLen])
			if err != nil {
				return &TamperError{Record: fh.seq, Reason: "checkpoint: " + err.Error()}
			}
			r.index = append(r.index, body.Keyframes...)
		}
		off = end
	}
	return nil
}

// FirstTerminal returns the channel a player shows by default: the
// channel of the first resize record (a channel with a terminal), or
// without one the channel of the first output record, or 0. It reads from
// the start until it finds a resize, at worst the whole recording, and
// leaves the reader at the start; damage ends the search with what was
// found before it.
func (r *Reader) FirstTerminal() int {
	r.rewind()
	defer r.rewind()
	out := -1
	for {
		rec, err := r.Next()
		if err != nil {
			return max(out, 0)
		}
		switch rec.Type {
		case TypeResize:
			return rec.Channel
		case TypeOutput:
			if out < 0 {
				out = rec.Channel
			}
		}
	}
}

// Index returns the time index of screen keyframes.
func (r *Reader) Index() ([]IndexEntry, error) {
	if err := r.loadIndex(); err != nil {
		return nil, err
	}
	return r.index, nil
}

// Duration returns the recording's length: the end record's time, or for
// a recording cut short the time of its last complete frame.
func (r *Reader) Duration() (time.Duration, error) {
	if err := r.loadIndex(); err != nil {
		return 0, err
	}
	return r.total, nil
}

// Seek is SeekChannel for channel 0, the only channel of recordings of
// format versions 1 and 2.
func (r *Reader) Seek(t time.Duration) (*Record, error) { return r.SeekChannel(0, t) }

// SeekChannel positions the reader at the last screen keyframe of channel
// ch at or before t and returns that keyframe; Next then continues after
// it, still verifying, with the records of every channel. If no keyframe
// of ch precedes t it rewinds to the start and returns nil.
func (r *Reader) SeekChannel(ch int, t time.Duration) (*Record, error) {
	if r.aead == nil {
		return nil, errors.New("recorder: seeking needs the data key")
	}
	if err := r.loadIndex(); err != nil {
		return nil, err
	}
	i := sort.Search(len(r.index), func(i int) bool { return r.index[i].Time > t }) - 1
	for i >= 0 && r.index[i].Channel != ch {
		i--
	}
	if i < 0 {
		r.rewind()
		return nil, nil
	}
	e := r.index[i]
	if e.Offset < r.hdrLen || e.Offset >= r.size || e.Seq == 0 {
		return nil, &TamperError{Record: e.Seq, Reason: "index entry points outside the recording"}
	}
	r.position(e.Offset, e.Seq, e.Chain, e.PrevTag, int64(e.Time))
	rec, err := r.Next()
	if err != nil {
		return nil, err
	}
	if rec.Seq != e.Seq || rec.Type != TypeKeyframe || rec.Channel != ch {
		return nil, &TamperError{Record: e.Seq, Reason: "index entry does not point at a keyframe"}
	}
	rec.Data = append([]byte(nil), rec.Data...)
	return &rec, nil
}
