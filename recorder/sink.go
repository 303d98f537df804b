package recorder

import (
	"crypto/cipher"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Stats are counters carried by checkpoints and the end record.
type Stats struct {
	Redactions int   `json:"redactions"`
	Dropped    int64 `json:"dropped,omitempty"` // records dropped by the size cap
	Capped     bool  `json:"capped,omitempty"`  // the size cap was reached
}

// IndexEntry locates a screen keyframe: enough to start reading and
// verifying at it without reading what comes before.
type IndexEntry struct {
	Seq     uint64        // the keyframe record
	Time    time.Duration // its time offset
	Offset  int64         // file offset of its frame
	Chain   []byte        // chain value of the record before it
	PrevTag []byte        // tag of the sealed record before it
	Channel int           // the terminal channel whose screen it holds
}

type indexJSON struct {
	Seq     uint64 `json:"seq"`
	Time    int64  `json:"t"`
	Offset  int64  `json:"offset"`
	Chain   string `json:"chain"`
	PrevTag string `json:"prev_tag"`
	Channel int    `json:"channel,omitempty"` // absent: channel 0
}

func (e IndexEntry) MarshalJSON() ([]byte, error) {
	return json.Marshal(indexJSON{e.Seq, int64(e.Time), e.Offset, hex.EncodeToString(e.Chain), hex.EncodeToString(e.PrevTag), e.Channel})
}

func (e *IndexEntry) UnmarshalJSON(b []byte) error {
	var j indexJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	c, err1 := hex.DecodeString(j.Chain)
	p, err2 := hex.DecodeString(j.PrevTag)
	if err1 != nil || err2 != nil || len(c) != chainLen || len(p) != tagLen || j.Channel < 0 || j.Channel > MaxChannel {
		return fmt.Errorf("malformed index entry")
	}
	*e = IndexEntry{j.Seq, time.Duration(j.Time), j.Offset, c, p, j.Channel}
	return nil
}

// signedBody is the clear JSON of a checkpoint or end record.
type signedBody struct {
	RecordingID string       `json:"recording_id"`
	Chain       string       `json:"chain"`   // hex chain value of the previous record
	Records     uint64       `json:"records"` // records before this one
	Keyframes   []IndexEntry `json:"keyframes,omitempty"`
	Stats
}

// batchSize is the capacity of a batch buffer: sealed frames are written
// to the file a batch at a time, in one write.
const batchSize = 256 << 10

// batchQueue is how many batches may wait for each of the sink's sealing
// and chaining goroutines, and writeQueue how many chained ones for its
// writing goroutine: more, because a write to the disk can take
// milliseconds (direct I/O, see directFile) or a checkpoint's sync a few
// hundred, while the session goes on producing. With the one each
// goroutine holds and the one the Writer is filling, at most
// 2*batchQueue+writeQueue+4 batches exist, each batchSize or one frame
// larger than that; the queues only fill while the disk is behind.
const (
	batchQueue = 2
	writeQueue = 8
)

// keyRef marks a keyframe inside a batch.
type keyRef struct {
	pos int        // offset of its frame in batch.buf
	e   IndexEntry // Seq, Time; the sink fills PrevTag, Offset and Chain
}

// batch is one unit of work for the sink: frames back to back, their
// records in plaintext until the sink seals them in place and their chain
// values unset until it chains them, then optionally a checkpoint or end
// record to sign, then optionally a reply once everything before it is
// written.
type batch struct {
	buf  []byte
	keys []keyRef

	full  bool // submitted because the next frame did not fit: more follow
	sign  byte // kindCheckpoint or kindEnd: build and sign that record
	seq   uint64
	t     time.Duration
	stats Stats

	done chan error // reply when written

	tail []byte // the signed record (and footer), built by the hasher
}

func (b *batch) reset() {
	b.buf, b.keys = b.buf[:0], b.keys[:0]
	b.full, b.sign, b.seq, b.t, b.stats, b.done, b.tail = false, 0, 0, 0, Stats{}, nil, nil
}

// sink seals frames in order on one goroutine (seal), chains and signs
// them on another (run) and writes them on a third (write), so that
// redaction (on the Writer's caller), sealing, hashing and writing of
// consecutive batches overlap.
type sink struct {
	ch          chan *batch // submitted batches, in order
	sealed      chan *batch // sealed batches, in order
	out         chan *batch // chained batches, in order
	freeMu      sync.Mutex
	free        []*batch    // written batches for reuse, the last written last
	syncs       chan syncer // checkpoints written, for syncLoop
	dst         io.Writer
	sealer      *sealer
	wb          *writeback // nil unless dst is a file on Linux
	signer      ed25519.PrivateKey
	recordingID string
	log         *slog.Logger
	chain       [chainLen]byte
	chainer     *chainer
	offset      int64
	index       []IndexEntry // all keyframes
	since       int          // index entries since the last checkpoint

	mu sync.Mutex // guards e
	e  error

	onFail func(error) // told of the first error (Writer.failed)
}

func newSink(dst io.Writer, z *sealer, signer ed25519.PrivateKey, recordingID string, h0 [chainLen]byte, offset int64, log *slog.Logger) *sink {
	return &sink{
		ch:          make(chan *batch, batchQueue),
		sealed:      make(chan *batch, batchQueue),
		out:         make(chan *batch, writeQueue),
		free:        make([]*batch, 0, 2*batchQueue+writeQueue+4),
		syncs:       make(chan syncer, 1),
		dst:         dst,
		sealer:      z,
		wb:          newWriteback(dst, offset),
		signer:      signer,
		recordingID: recordingID,
		log:         log,
		chain:       h0,
		chainer:     newChainer(writeVersion),
		offset:      offset,
	}
}

// newBatch returns an empty batch, reusing the one written last when there
// is one: its buffer is the likeliest still to be in the CPU's caches, so
// filling it costs less than filling one written longer ago.
func (s *sink) newBatch() *batch {
	s.freeMu.Lock()
	defer s.freeMu.Unlock()
	if n := len(s.free); n > 0 {
		b := s.free[n-1]
		s.free = s.free[:n-1]
		return b
	}
	return &batch{buf: make([]byte, 0, batchSize)}
}

// recycle keeps the written batch b for newBatch.
func (s *sink) recycle(b *batch) {
	if cap(b.buf) != batchSize {
		return // a large media sample's: let it go
	}
	b.reset()
	s.freeMu.Lock()
	defer s.freeMu.Unlock()
	if len(s.free) < cap(s.free) {
		s.free = append(s.free, b)
	}
}

// submit hands b to the sink; it blocks while batchQueue batches wait.
func (s *sink) submit(b *batch) { s.ch <- b }
func (s *sink) close()          { close(s.ch) }

func (s *sink) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.e
}

func (s *sink) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.e == nil {
		s.e = fmt.Errorf("recorder: writing: %w", err)
		s.log.Error("recording write failed; recording is cut short", "err", err)
		if s.onFail != nil {
			s.onFail(s.e)
		}
	}
}

// seal seals the records of each submitted batch and passes it to run,
// until close.
func (s *sink) seal() {
	defer close(s.sealed)
	for b := range s.ch {
		s.sealer.sealFrames(b)
		s.sealed <- b
	}
}

// run chains the frames of each sealed batch, builds its signed record if
// it has one and passes it to write, until seal stops.
func (s *sink) run() {
	defer close(s.out)
	for b := range s.sealed {
		s.chainFrames(b)
		if b.sign != 0 {
			s.buildSigned(b)
		}
		s.out <- b
	}
}

// syncer is a destination that can commit what was written to stable
// storage, like *os.File.
type syncer interface{ Sync() error }

// write writes each chained batch in one write, then its signed record,
// until run stops. It asks syncLoop to sync after each checkpoint and syncs
// itself after the end record.
func (s *sink) write() {
	defer close(s.syncs)
	for b := range s.out {
		if s.err() == nil && len(b.buf) > 0 {
			if err := s.writeFrames(b); err != nil {
				s.fail(err)
			} else {
				s.wb.wrote(len(b.buf))
			}
		}
		if s.err() == nil && b.tail != nil {
			if _, err := s.dst.Write(b.tail); err != nil {
				s.fail(err)
			} else {
				s.wb.wrote(len(b.tail))
				if sy, ok := s.dst.(syncer); ok {
					s.sync(sy, b.sign == kindEnd)
				}
			}
		}
		if b.done != nil {
			b.done <- s.err()
		}
		s.recycle(b)
	}
}

// sync syncs dst now if wait is set, and otherwise has syncLoop do it while
// writing goes on: a sync can take a few hundred milliseconds, which would
// stall the session once the write queue is full. A checkpoint that comes
// while a sync is still asked for shares it.
func (s *sink) sync(sy syncer, wait bool) {
	if wait {
		if err := sy.Sync(); err != nil {
			s.fail(err)
		}
		return
	}
	select {
	case s.syncs <- sy:
	default:
	}
}

// syncLoop runs the syncs write asks for, until write stops.
func (s *sink) syncLoop() {
	for sy := range s.syncs {
		if err := sy.Sync(); err != nil {
			s.fail(err)
		}
	}
}

// writeFrames writes b's frames. A full batch without a signed record is
// followed by more within the flush interval, so a destination that can
// (a directFile) may keep its last partial block back for then.
func (s *sink) writeFrames(b *batch) error {
	if h, ok := s.dst.(holdingWriter); ok && b.full && b.tail == nil && b.done == nil {
		return h.writeHolding(b.buf)
	}
	_, err := s.dst.Write(b.buf)
	return err
}

// holdingWriter is a destination that can take bytes without putting all
// of them into the file at once.
type holdingWriter interface {
	writeHolding(p []byte) error
}

// recordingFile is the file Create writes a recording to.
type recordingFile interface {
	io.WriteCloser
	syncer
}

// sealer seals records in order under one recording's data key. Each
// record's associated data holds the tag of the record before it, so the
// records of a recording are sealed one after another.
type sealer struct {
	aead    cipher.AEAD
	prevTag [tagLen]byte
	// The associated data and nonce live here: passed to the AEAD
	// interface, locals would escape and cost two allocations a record.
	ad    [frameHeaderLen + tagLen]byte
	nonce [12]byte
}

// sealFrames seals the records of b's frames in place and gives its
// keyframes the tag before them.
func (z *sealer) sealFrames(b *batch) {
	keys := b.keys
	for pos := 0; pos < len(b.buf); {
		n := 4 + int(binary.BigEndian.Uint32(b.buf[pos:]))
		if len(keys) > 0 && keys[0].pos == pos {
			keys[0].e.PrevTag = append([]byte(nil), z.prevTag[:]...)
			keys = keys[1:]
		}
		z.seal(b.buf[pos : pos+n])
		pos += n
	}
}

// seal seals frame f's plaintext in place: the record between its clear
// header and the room left for its tag and chain value.
func (z *sealer) seal(f []byte) {
	z.ad = sealAD(f, &z.prevTag)
	z.nonce = nonce(binary.BigEndian.Uint64(f[4:12]))
	pt := f[frameHeaderLen : len(f)-tagLen-chainLen]
	ct := z.aead.Seal(pt[:0], z.nonce[:], pt, z.ad[:])
	copy(z.prevTag[:], ct[len(ct)-tagLen:])
}

// chainFrames fills in the chain values of the frames in b and records its
// keyframes in the index.
func (s *sink) chainFrames(b *batch) {
	keys := b.keys
	for pos := 0; pos < len(b.buf); {
		n := 4 + int(binary.BigEndian.Uint32(b.buf[pos:]))
		if len(keys) > 0 && keys[0].pos == pos {
			e := keys[0].e
			e.Offset = s.offset + int64(pos)
			e.Chain = append([]byte(nil), s.chain[:]...)
			s.index = append(s.index, e)
			s.since++
			keys = keys[1:]
		}
		s.chainFrame(b.buf[pos : pos+n])
		pos += n
	}
	s.offset += int64(len(b.buf))
}

// chainFrame fills in the chain value of frame f.
func (s *sink) chainFrame(f []byte) {
	s.chain = s.chainer.next(&s.chain, f[:len(f)-chainLen])
	copy(f[len(f)-chainLen:], s.chain[:])
}

// buildSigned builds and signs the checkpoint or end record that follows
// b's frames, with the footer after the end record, as b.tail.
func (s *sink) buildSigned(b *batch) {
	body := signedBody{RecordingID: s.recordingID, Chain: hex.EncodeToString(s.chain[:]), Records: b.seq - 1, Stats: b.stats}
	ctx := checkpointContext
	if b.sign == kindEnd {
		body.Keyframes = s.index
		ctx = endContext
	} else {
		body.Keyframes = s.index[len(s.index)-s.since:]
	}
	js, err := json.Marshal(body)
	if err != nil {
		s.fail(err)
		return
	}
	flen := frameHeaderLen + len(js) + sigLen + chainLen
	f := make([]byte, flen, flen+footerLen)
	putFrameHeader(f, flen-4, b.seq, int64(b.t), b.sign)
	copy(f[frameHeaderLen:], js)
	msgEnd := frameHeaderLen + len(js)
	sig := ed25519.Sign(s.signer, append([]byte(ctx), f[:msgEnd]...))
	copy(f[msgEnd:], sig)
	start := s.offset
	s.chainFrame(f)
	s.offset += int64(flen)
	s.since = 0
	if b.sign == kindEnd {
		f = append(f, footerMagic...)
		f = binary.BigEndian.AppendUint64(f, uint64(start))
	}
	b.tail = f
}
