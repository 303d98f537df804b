package rtc

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// recordQueueLen bounds the packets of one publisher waiting for the
	// recording: about 2 s of a 2.5 Mbit/s share, at most 768 KiB.
	recordQueueLen = 512
	// recordWakeAfter is how many packets may wait before the recording
	// goroutine is woken even though no frame has ended (marker bit).
	recordWakeAfter = 64
	// dropReportInterval is how often, at most, the recording is told
	// that packets were dropped.
	dropReportInterval = time.Second
)

// mediaRecorder assembles one publisher track's RTP packets into frames
// (VP8 or H.264) for the room's Recorder, on a goroutine of its own (run). The forwarding
// goroutine hands it the packets, in the buffers it read them into,
// through a bounded queue and never waits for it: when the recording falls behind (Recorder.Media
// blocks while a slow disk catches up) the queue fills, and further packets
// are dropped from the recording, never from the viewers. Drops are
// counted (Room.RecordDropped), logged, and written into the recording as
// "screen.record.dropped" events with the running count; a frame that lost
// a packet is not recorded (frameAssembler drops incomplete frames).
//
// The recording goroutine is woken once a frame's last packet (RTP marker
// bit) is queued, or recordWakeAfter packets, not for every packet, and
// takes everything queued at once. Packet buffers are recycled: at most
// recordQueueLen are queued and frameWindow held for reordering.
type mediaRecorder struct {
	rm      *Room
	codec   depacketizer
	base    time.Duration // this publisher's time origin in the recording
	dropped atomic.Int64  // packets of this track dropped from the recording
	wake    chan struct{} // a token: queue has packets, or closed

	mu     sync.Mutex // guards the fields below
	queue  []*pktBuf  // for run, in arrival order
	free   []*pktBuf  // for the forwarding goroutine to read into (swap)
	closed bool
}

func (rm *Room) newMediaRecorder(codec depacketizer) *mediaRecorder {
	return &mediaRecorder{rm: rm, codec: codec, base: time.Since(rm.start), wake: make(chan struct{}, 1)}
}

// swap queues the packet in b for the recording, or drops it from the
// recording if the queue is full, and returns the buffer the forwarding
// goroutine reads its next packet into: a free one, or b again when b was
// not queued. It never blocks on the recording. Only the forwarding
// goroutine calls it; handing over the buffer it read into, instead of a
// copy, saves copying every packet.
func (mr *mediaRecorder) swap(b *pktBuf) *pktBuf {
	mr.mu.Lock()
	if len(mr.queue) >= recordQueueLen {
		mr.mu.Unlock()
		mr.dropped.Add(1)
		mr.rm.recordDropped.Add(1)
		return b
	}
	mr.queue = append(mr.queue, b)
	queued := len(mr.queue)
	var next *pktBuf
	if n := len(mr.free); n > 0 {
		next, mr.free = mr.free[n-1], mr.free[:n-1]
	}
	mr.mu.Unlock()
	if marker := b.n > 1 && b.b[1]&0x80 != 0; marker || queued >= recordWakeAfter {
		mr.signal()
	}
	if next == nil {
		next = new(pktBuf)
	}
	return next
}

func (mr *mediaRecorder) signal() {
	select {
	case mr.wake <- struct{}{}:
	default: // a token is waiting already
	}
}

// close ends the queue; run records what is still in it and returns.
func (mr *mediaRecorder) close() {
	mr.mu.Lock()
	mr.closed = true
	mr.mu.Unlock()
	mr.signal()
}

// take waits for queued packets and swaps them for batch (emptied), and
// returns spare buffers to the free list. It returns nil once closed and
// drained.
func (mr *mediaRecorder) take(batch, spare []*pktBuf) []*pktBuf {
	for {
		mr.mu.Lock()
		if len(mr.free) < recordQueueLen+frameWindow {
			mr.free = append(mr.free, spare...)
		}
		spare = nil
		batch, mr.queue = mr.queue, batch[:0]
		closed := mr.closed
		mr.mu.Unlock()
		if len(batch) > 0 {
			return batch
		}
		if closed {
			return nil
		}
		<-mr.wake
	}
}

// run assembles the queued packets into frames and records them, until
// close.
func (mr *mediaRecorder) run() {
	rec := mr.rm.rec
	var (
		first    = true
		lastTS   uint32
		ticks    int64 // unwrapped RTP time since the first frame
		reported int64 // drops written to the recording
		lastDrop time.Time
		spare    []*pktBuf // consumed buffers, back to the free list at the next take
	)
	frames := newFrameAssembler(mr.codec, func(ts uint32, frame []byte) {
		if first {
			first, lastTS = false, ts
		}
		ticks += int64(int32(ts - lastTS))
		lastTS = ts
		at := mr.base + time.Duration(ticks)*time.Second/90000
		if err := rec.Media(mr.codec.codec(), at, frame, mr.codec.key(frame)); err == nil {
			mr.rm.frames.Add(1)
		}
	}, func(b *pktBuf) { spare = append(spare, b) })
	reportDrops := func(force bool) {
		n := mr.dropped.Load()
		if n == reported || (!force && time.Since(lastDrop) < dropReportInterval) {
			return
		}
		reported, lastDrop = n, time.Now()
		mr.rm.relay.log.Warn("screen share recording fell behind; packets dropped from it, not from the viewers", "room", mr.rm.id, "packets", n)
		rec.Event("screen.record.dropped", map[string]string{"packets": strconv.FormatInt(n, 10)})
	}
	var batch []*pktBuf
	for {
		batch = mr.take(batch, spare)
		spare = spare[:0]
		if batch == nil {
			break
		}
		for _, b := range batch {
			frames.push(b)
		}
		clear(batch)
		reportDrops(false)
	}
	frames.flush()
	reportDrops(true)
}
