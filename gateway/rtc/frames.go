package rtc

import (
	"github.com/pion/rtp"
)

const (
	// frameWindow is how many packets a frameAssembler holds for
	// reordering: a packet missing while this many newer ones arrived is
	// lost.
	frameWindow = 256
	// frameMaxDelay is how long, in RTP time (90 kHz), a missing packet is
	// waited for once newer packets are buffered behind it.
	frameMaxDelay = 90000
	// frameMax bounds a frame; a larger one is dropped. The recorder takes
	// up to 8 MiB; browsers send screen keyframes of well under 1 MiB.
	frameMax = 4 << 20
	// frameResync is how far behind the expected sequence number a packet
	// must be to be taken for a restarted sequence rather than a late one.
	frameResync = 4 * frameWindow
)

// depacketizer is what a frameAssembler needs to know of one video codec's
// RTP payload format.
type depacketizer interface {
	// codec is the codec's name in recordings ("vp8", "h264").
	codec() string
	// parse checks an RTP payload and returns the part the frame is built
	// from (a sub-slice of payload) and whether the packet begins a frame.
	// ok is false for a payload that is malformed or not supported.
	parse(payload []byte) (body []byte, start, ok bool)
	// appendTo appends the frame bytes of one packet's body to frame.
	appendTo(frame, body []byte) []byte
	// key reports whether a whole frame is a key frame, which a decoder
	// can start from.
	key(frame []byte) bool
}

// pktBuf holds one RTP packet as received.
type pktBuf struct {
	n int
	b [receiveMTU]byte
}

// frameAssembler rebuilds video frames from the RTP packets of one track,
// which may arrive reordered, twice, or not at all. It holds up to
// frameWindow packets by sequence number and consumes them in order: a
// frame is every packet of one timestamp from the one that starts it (as
// the codec's depacketizer says) to the one with the marker bit, or to the
// next timestamp. A frame that lost a packet, or began without its start,
// is dropped; a missing packet is given up once frameWindow newer packets
// or frameMaxDelay of newer RTP time arrived behind it. The sequence starts
// at the first frame start to arrive (packets before it are held, so a
// start that arrives after the rest of its frame still counts).
//
// Frames are assembled in a buffer that is reused: emit gets a frame that
// is valid only until it returns. Packets are handed back to release once
// consumed. A frameAssembler is not safe for concurrent use.
type frameAssembler struct {
	emit    func(ts uint32, frame []byte)
	release func(*pktBuf)
	codec   depacketizer

	ring   [frameWindow]frameSlot
	synced bool   // a frame start arrived: next is set
	next   uint16 // sequence number of the next packet to consume
	held   int    // packets in ring
	newest uint32 // RTP timestamp of the newest packet pushed

	have  bool   // a frame timestamp has been seen
	ts    uint32 // timestamp of the current frame
	open  bool   // the current frame has not ended (marker or new timestamp)
	valid bool   // the current frame began at its start and lost nothing since
	frame []byte // the current frame

	late, dropped int64 // packets too late; frames dropped incomplete
	pkt           rtp.Packet
}

type frameSlot struct {
	buf     *pktBuf // nil: not arrived
	seq     uint16
	ts      uint32
	marker  bool
	start   bool   // the first packet of a frame
	payload []byte // what the depacketizer keeps of the payload, in buf
}

func newFrameAssembler(codec depacketizer, emit func(ts uint32, frame []byte), release func(*pktBuf)) *frameAssembler {
	return &frameAssembler{codec: codec, emit: emit, release: release}
}

// push takes the packet in b; b goes back to release once consumed or
// refused.
func (f *frameAssembler) push(b *pktBuf) {
	if f.pkt.Unmarshal(b.b[:b.n]) != nil {
		f.release(b)
		return
	}
	s := frameSlot{buf: b, seq: f.pkt.SequenceNumber, ts: f.pkt.Timestamp, marker: f.pkt.Marker}
	if len(f.pkt.Payload) > 0 {
		body, start, ok := f.codec.parse(f.pkt.Payload)
		if !ok {
			f.release(b)
			return
		}
		s.payload, s.start = body, start
	}
	if !f.synced {
		f.sync(s)
		return
	}
	d := int16(s.seq - f.next)
	if d < 0 {
		if int(d) > -frameResync {
			f.late++
			f.release(b)
			return
		}
		f.skipTo(s.seq) // a new sequence: give up on everything held
	}
	if uint16(s.seq-f.next) >= frameWindow {
		f.skipTo(s.seq - frameWindow + 1)
	}
	i := s.seq % frameWindow
	if f.ring[i].buf != nil { // the same packet again
		f.release(b)
		return
	}
	f.ring[i] = s
	f.held++
	if int32(s.ts-f.newest) > 0 || f.held == 1 {
		f.newest = s.ts
	}
	f.drain()
	if f.held > 0 && f.ring[f.next%frameWindow].buf == nil {
		// Waiting for a missing packet: give up on it once the oldest
		// packet held behind it is frameMaxDelay older than the newest.
		for k := uint16(1); k < frameWindow; k++ {
			if o := &f.ring[(f.next+k)%frameWindow]; o.buf != nil {
				if int32(f.newest-o.ts) > frameMaxDelay {
					f.skipTo(f.next + k)
					f.drain()
				}
				break
			}
		}
	}
}

// sync holds the packets that arrive before the first frame start, which
// may be reordered behind them, and starts the sequence at that start.
func (f *frameAssembler) sync(s frameSlot) {
	i := s.seq % frameWindow
	if o := &f.ring[i]; o.buf != nil { // an older packet in its place
		f.release(o.buf)
		f.held--
	}
	f.ring[i] = s
	f.held++
	if !s.start {
		return
	}
	f.synced, f.next, f.newest = true, s.seq, s.ts
	for k := range f.ring { // keep what follows the start, within the window
		o := &f.ring[k]
		if o.buf == nil {
			continue
		}
		if uint16(o.seq-f.next) >= frameWindow {
			f.release(o.buf)
			*o = frameSlot{}
			f.held--
		} else if int32(o.ts-f.newest) > 0 {
			f.newest = o.ts
		}
	}
	f.drain()
}

// drain consumes the packets held from next on, up to the first missing.
func (f *frameAssembler) drain() {
	for f.held > 0 {
		s := &f.ring[f.next%frameWindow]
		if s.buf == nil {
			return
		}
		f.consume(s)
		f.next++
	}
}

// skipTo consumes or gives up on every sequence number before seq.
func (f *frameAssembler) skipTo(seq uint16) {
	for f.next != seq {
		if f.held == 0 { // nothing held: jump
			f.gap()
			f.next = seq
			return
		}
		if s := &f.ring[f.next%frameWindow]; s.buf != nil {
			f.consume(s)
		} else {
			f.gap()
		}
		f.next++
	}
}

// flush consumes everything held, giving up on what is missing; the
// frame still open is dropped, as its end is not known.
func (f *frameAssembler) flush() {
	if !f.synced {
		for k := range f.ring {
			if o := &f.ring[k]; o.buf != nil {
				f.release(o.buf)
				*o = frameSlot{}
			}
		}
		f.held = 0
		return
	}
	for f.held > 0 {
		if s := &f.ring[f.next%frameWindow]; s.buf != nil {
			f.consume(s)
		} else {
			f.gap()
		}
		f.next++
	}
	if f.open && f.valid {
		f.dropped++
	}
	f.open = false
}

// gap notes a lost packet: the open frame cannot be complete.
func (f *frameAssembler) gap() {
	if f.open && f.valid {
		f.dropped++
	}
	f.valid = false
}

// consume adds the packet in s to the current frame and frees s.
func (f *frameAssembler) consume(s *frameSlot) {
	defer func() {
		f.release(s.buf)
		*s = frameSlot{}
		f.held--
	}()
	if len(s.payload) == 0 { // padding
		return
	}
	if !f.have || s.ts != f.ts {
		f.end()
		f.have, f.ts, f.open, f.valid = true, s.ts, true, s.start
		f.frame = f.frame[:0]
	}
	if !f.open || !f.valid {
		if s.marker {
			f.open = false
		}
		return
	}
	if f.frame = f.codec.appendTo(f.frame, s.payload); len(f.frame) > frameMax {
		f.valid = false
		f.dropped++
		return
	}
	if s.marker {
		f.end()
	}
}

// end ends the current frame, emitting it if it is whole.
func (f *frameAssembler) end() {
	if f.open && f.valid && len(f.frame) > 0 {
		f.emit(f.ts, f.frame)
	}
	f.open = false
}
