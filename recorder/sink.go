package recorder

import (
	"bufio"
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
}

type indexJSON struct {
	Seq     uint64 `json:"seq"`
	Time    int64  `json:"t"`
	Offset  int64  `json:"offset"`
	Chain   string `json:"chain"`
	PrevTag string `json:"prev_tag"`
}

func (e IndexEntry) MarshalJSON() ([]byte, error) {
	return json.Marshal(indexJSON{e.Seq, int64(e.Time), e.Offset, hex.EncodeToString(e.Chain), hex.EncodeToString(e.PrevTag)})
}

func (e *IndexEntry) UnmarshalJSON(b []byte) error {
	var j indexJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	c, err1 := hex.DecodeString(j.Chain)
	p, err2 := hex.DecodeString(j.PrevTag)
	if err1 != nil || err2 != nil || len(c) != chainLen || len(p) != tagLen {
		return fmt.Errorf("malformed index entry")
	}
	*e = IndexEntry{j.Seq, time.Duration(j.Time), j.Offset, c, p}
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

// item is one unit of work for the sink.
type item struct {
	frame []byte      // a sealed frame, chain value still zero
	key   *IndexEntry // set when frame is a keyframe

	sign  byte // kindCheckpoint or kindEnd: build and sign that record
	seq   uint64
	t     time.Duration
	stats Stats

	flush bool
	done  chan error // flush: reply when written
}

// sink chains, signs and writes frames in order on its own goroutine.
type sink struct {
	ch          chan *item
	dst         io.Writer
	bw          *bufio.Writer
	signer      ed25519.PrivateKey
	recordingID string
	log         *slog.Logger
	chain       [chainLen]byte
	ch256       *chainer
	offset      int64
	index       []IndexEntry // all keyframes
	since       int          // index entries since the last checkpoint

	mu sync.Mutex // guards e
	e  error
}

func newSink(dst io.Writer, signer ed25519.PrivateKey, recordingID string, h0 [chainLen]byte, offset int64, log *slog.Logger) *sink {
	return &sink{
		ch:          make(chan *item, 64),
		dst:         dst,
		bw:          bufio.NewWriterSize(dst, 128<<10),
		signer:      signer,
		recordingID: recordingID,
		log:         log,
		chain:       h0,
		ch256:       newChainer(),
		offset:      offset,
	}
}

func (s *sink) enqueue(it *item) { s.ch <- it }
func (s *sink) close()           { close(s.ch) }

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
	}
}

func (s *sink) run() {
	for it := range s.ch {
		s.handle(it)
	}
	if s.err() == nil {
		if err := s.bw.Flush(); err != nil {
			s.fail(err)
		}
	}
}

func (s *sink) handle(it *item) {
	failed := s.err() != nil
	switch {
	case it.flush:
		if !failed {
			if err := s.bw.Flush(); err != nil {
				s.fail(err)
			}
		}
		if it.done != nil {
			it.done <- s.err()
		}
	case it.sign != 0:
		if !failed {
			s.writeSigned(it)
		}
	default:
		if !failed {
			if it.key != nil {
				e := *it.key
				e.Offset = s.offset
				e.Chain = append([]byte(nil), s.chain[:]...)
				s.index = append(s.index, e)
				s.since++
			}
			s.writeFrame(it.frame)
		}
		putBuf(it.frame)
	}
}

// writeFrame fills in the chain value and writes the frame.
func (s *sink) writeFrame(f []byte) {
	s.chain = s.ch256.next(&s.chain, f[:len(f)-chainLen])
	copy(f[len(f)-chainLen:], s.chain[:])
	if _, err := s.bw.Write(f); err != nil {
		s.fail(err)
	}
	s.offset += int64(len(f))
}

// writeSigned builds, signs and writes a checkpoint or the end record, then
// syncs; the end record is followed by the footer.
func (s *sink) writeSigned(it *item) {
	body := signedBody{RecordingID: s.recordingID, Chain: hex.EncodeToString(s.chain[:]), Records: it.seq - 1, Stats: it.stats}
	ctx := checkpointContext
	if it.sign == kindEnd {
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
	f := make([]byte, flen)
	putFrameHeader(f, flen-4, it.seq, int64(it.t), it.sign)
	copy(f[frameHeaderLen:], js)
	msgEnd := frameHeaderLen + len(js)
	sig := ed25519.Sign(s.signer, append([]byte(ctx), f[:msgEnd]...))
	copy(f[msgEnd:], sig)
	start := s.offset
	s.writeFrame(f)
	s.since = 0
	if it.sign == kindEnd {
		var foot [footerLen]byte
		copy(foot[:], footerMagic)
		binary.BigEndian.PutUint64(foot[8:], uint64(start))
		if _, err := s.bw.Write(foot[:]); err != nil {
			s.fail(err)
		}
	}
	if err := s.bw.Flush(); err != nil {
		s.fail(err)
		return
	}
	if sy, ok := s.dst.(interface{ Sync() error }); ok {
		if err := sy.Sync(); err != nil {
			s.fail(err)
		}
	}
}
