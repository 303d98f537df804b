package rtc

import (
	"strconv"
	"sync/atomic"
	"time"
)

const (
	// recordQueueLen bounds the packets of one publisher waiting for the
	// recording: about 2 s of a 2.5 Mbit/s share, at most 768 KiB.
	recordQueueLen = 512
	// dropReportInterval is how often, at most, the recording is told
	// that packets were dropped.
	dropReportInterval = time.Second
)

// mediaRecorder assembles one publisher track's RTP packets into VP8 frames
// for the room's Recorder, on a goroutine of its own (run). The forwarding
// goroutine hands it copies of the packets through a bounded queue and
// never waits for it: when the recording falls behind (Recorder.Media
// blocks while a slow disk catches up) the queue fills, and further packets
// are dropped from the recording, never from the viewers. Drops are
// counted (Room.RecordDropped) and written into the recording as
// "screen.record.dropped" events with the running count; a frame that lost
// a packet is not recorded (vp8Frames drops incomplete frames).
//
// The packet buffers are recycled through free: at most recordQueueLen
// are queued and vp8Window held for reordering.
type mediaRecorder struct {
	rm      *Room
	queue   chan *pktBuf
	free    chan *pktBuf
	base    time.Duration // this publisher's time origin in the recording
	dropped atomic.Int64  // packets of this track dropped from the recording
}

func (rm *Room) newMediaRecorder() *mediaRecorder {
	return &mediaRecorder{
		rm:    rm,
		queue: make(chan *pktBuf, recordQueueLen),
		free:  make(chan *pktBuf, recordQueueLen+vp8Window),
		base:  time.Since(rm.start),
	}
}

// push queues a copy of the RTP packet pkt, or drops it if the queue is
// full. It never blocks. Only the forwarding goroutine calls it.
func (mr *mediaRecorder) push(pkt []byte) {
	if len(mr.queue) == cap(mr.queue) || len(pkt) > receiveMTU {
		mr.dropped.Add(1)
		mr.rm.recordDropped.Add(1)
		return
	}
	var b *pktBuf
	select {
	case b = <-mr.free:
	default:
		b = new(pktBuf)
	}
	b.n = copy(b.b[:], pkt)
	mr.queue <- b // cannot block: the only sender saw room
}

func (mr *mediaRecorder) release(b *pktBuf) {
	select {
	case mr.free <- b:
	default:
	}
}

// close ends the queue; run records what is still in it and returns.
func (mr *mediaRecorder) close() { close(mr.queue) }

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
	)
	frames := newVP8Frames(func(ts uint32, frame []byte) {
		if first {
			first, lastTS = false, ts
		}
		ticks += int64(int32(ts - lastTS))
		lastTS = ts
		at := mr.base + time.Duration(ticks)*time.Second/90000
		key := frame[0]&1 == 0
		if err := rec.Media("vp8", at, frame, key); err == nil {
			mr.rm.frames.Add(1)
		}
	}, mr.release)
	reportDrops := func(force bool) {
		n := mr.dropped.Load()
		if n == reported || (!force && time.Since(lastDrop) < dropReportInterval) {
			return
		}
		reported, lastDrop = n, time.Now()
		rec.Event("screen.record.dropped", map[string]string{"packets": strconv.FormatInt(n, 10)})
	}
	for b := range mr.queue {
		frames.push(b)
		reportDrops(false)
	}
	frames.flush()
	reportDrops(true)
}
