package rtc

import (
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
)

const (
	// vp8Window is how many packets vp8Frames holds for reordering: a
	// packet missing while this many newer ones arrived is lost.
	vp8Window = 256
	// vp8MaxDelay is how long, in RTP time (90 kHz), a missing packet is
	// waited for once newer packets are buffered behind it.
	vp8MaxDelay = 90000
	// vp8MaxFrame bounds a frame; a larger one is dropped. The recorder
	// takes up to 8 MiB; browsers send screen keyframes of well under 1 MiB.
	vp8MaxFrame = 4 << 20
	// vp8Resync is how far behind the expected sequence number a packet
	// must be to be taken for a restarted sequence rather than a late one.
	vp8Resync = 4 * vp8Window
)

// pktBuf holds one RTP packet as received.
type pktBuf struct {
	n int
	b [receiveMTU]byte
}

// vp8Frames rebuilds VP8 frames from the RTP packets of one track, which
// may arrive reordered, twice, or not at all. It holds up to vp8Window
// packets by sequence number and consumes them in order: a frame is every
// packet of one timestamp from the one that starts it (VP8 payload
// descriptor S=1, partition 0) to the one with the marker bit, or to the
// next timestamp. A frame that lost a packet, or began without its start,
// is dropped; a missing packet is given up once vp8Window newer packets
// or vp8MaxDelay of newer RTP time arrived behind it. The sequence starts
// at the first frame start to arrive (packets before it are held, so a
// start that arrives after the rest of its frame still counts).
//
// Frames are assembled in a buffer that is reused: emit gets a frame that
// is valid only until it returns. Packets are handed back to release once
// consumed. vp8Frames is not safe for concurrent use.
type vp8Frames struct {
	emit    func(ts uint32, frame []byte)
	release func(*pktBuf)

	ring   [vp8Window]vp8Slot
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
	vp8           codecs.VP8Packet
	pkt           rtp.Packet
}

type vp8Slot struct {
	buf     *pktBuf // nil: not arrived
	seq     uint16
	ts      uint32
	marker  bool
	start   bool   // S=1 and partition 0: the first packet of a frame
	payload []byte // the VP8 payload after the descriptor, in buf
}

func newVP8Frames(emit func(ts uint32, frame []byte), release func(*pktBuf)) *vp8Frames {
	return &vp8Frames{emit: emit, release: release}
}

// push takes the packet in b; b goes back to release once consumed or
// refused.
func (f *vp8Frames) push(b *pktBuf) {
	if f.pkt.Unmarshal(b.b[:b.n]) != nil {
		f.release(b)
		return
	}
	s := vp8Slot{buf: b, seq: f.pkt.SequenceNumber, ts: f.pkt.Timestamp, marker: f.pkt.Marker}
	if len(f.pkt.Payload) > 0 {
		payload, err := f.vp8.Unmarshal(f.pkt.Payload)
		if err != nil {
			f.release(b)
			return
		}
		s.payload = payload
		s.start = f.vp8.S == 1 && f.vp8.PID == 0
	}
	if !f.synced {
		f.sync(s)
		return
	}
	d := int16(s.seq - f.next)
	if d < 0 {
		if int(d) > -vp8Resync {
			f.late++
			f.release(b)
			return
		}
		f.skipTo(s.seq) // a new sequence: give up on everything held
	}
	if uint16(s.seq-f.next) >= vp8Window {
		f.skipTo(s.seq - vp8Window + 1)
	}
	i := s.seq % vp8Window
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
	if f.held > 0 && f.ring[f.next%vp8Window].buf == nil {
		// Waiting for a missing packet: give up on it once the oldest
		// packet held behind it is vp8MaxDelay older than the newest.
		for k := uint16(1); k < vp8Window; k++ {
			if o := &f.ring[(f.next+k)%vp8Window]; o.buf != nil {
				if int32(f.newest-o.ts) > vp8MaxDelay {
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
func (f *vp8Frames) sync(s vp8Slot) {
	i := s.seq % vp8Window
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
		if uint16(o.seq-f.next) >= vp8Window {
			f.release(o.buf)
			*o = vp8Slot{}
			f.held--
		} else if int32(o.ts-f.newest) > 0 {
			f.newest = o.ts
		}
	}
	f.drain()
}

// drain consumes the packets held from next on, up to the first missing.
func (f *vp8Frames) drain() {
	for f.held > 0 {
		s := &f.ring[f.next%vp8Window]
		if s.buf == nil {
			return
		}
		f.consume(s)
		f.next++
	}
}

// skipTo consumes or gives up on every sequence number before seq.
func (f *vp8Frames) skipTo(seq uint16) {
	for f.next != seq {
		if f.held == 0 { // nothing held: jump
			f.gap()
			f.next = seq
			return
		}
		if s := &f.ring[f.next%vp8Window]; s.buf != nil {
			f.consume(s)
		} else {
			f.gap()
		}
		f.next++
	}
}

// flush consumes everything held, giving up on what is missing; the
// frame still open is dropped, as its end is not known.
func (f *vp8Frames) flush() {
	if !f.synced {
		for k := range f.ring {
			if o := &f.ring[k]; o.buf != nil {
				f.release(o.buf)
				*o = vp8Slot{}
			}
		}
		f.held = 0
		return
	}
	for f.held > 0 {
		if s := &f.ring[f.next%vp8Window]; s.buf != nil {
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
func (f *vp8Frames) gap() {
	if f.open && f.valid {
		f.dropped++
	}
	f.valid = false
}

// consume adds the packet in s to the current frame and frees s.
func (f *vp8Frames) consume(s *vp8Slot) {
	defer func() {
		f.release(s.buf)
		*s = vp8Slot{}
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
	if len(f.frame)+len(s.payload) > vp8MaxFrame {
		f.valid = false
		f.dropped++
		return
	}
	f.frame = append(f.frame, s.payload...)
	if s.marker {
		f.end()
	}
}

// end ends the current frame, emitting it if it is whole.
func (f *vp8Frames) end() {
	if f.open && f.valid && len(f.frame) > 0 {
		f.emit(f.ts, f.frame)
	}
	f.open = false
}
