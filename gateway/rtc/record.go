package rtc

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"
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
// a packet is not recorded (the sample builder skips incomplete frames).
type mediaRecorder struct {
	rm      *Room
	queue   chan []byte
	base    time.Duration // this publisher's time origin in the recording
	dropped atomic.Int64  // packets of this track dropped from the recording
}

func (rm *Room) newMediaRecorder() *mediaRecorder {
	return &mediaRecorder{rm: rm, queue: make(chan []byte, recordQueueLen), base: time.Since(rm.start)}
}

// push queues a copy of the RTP packet pkt, or drops it if the queue is
// full. It never blocks. Only the forwarding goroutine calls it.
func (mr *mediaRecorder) push(pkt []byte) {
	if len(mr.queue) == cap(mr.queue) {
		mr.dropped.Add(1)
		mr.rm.recordDropped.Add(1)
		return
	}
	mr.queue <- append(make([]byte, 0, len(pkt)), pkt...) // cannot block: the only sender saw room
}

// close ends the queue; run records what is still in it and returns.
func (mr *mediaRecorder) close() { close(mr.queue) }

// run depacketizes the queued packets into frames and records them, until
// close.
func (mr *mediaRecorder) run() {
	rec := mr.rm.rec
	sb := samplebuilder.New(256, &codecs.VP8Packet{}, 90000, samplebuilder.WithMaxTimeDelay(time.Second))
	var (
		first    = true
		lastTS   uint32
		ticks    int64 // unwrapped RTP time since the first frame
		reported int64 // drops written to the recording
		lastDrop time.Time
	)
	reportDrops := func(force bool) {
		n := mr.dropped.Load()
		if n == reported || (!force && time.Since(lastDrop) < dropReportInterval) {
			return
		}
		reported, lastDrop = n, time.Now()
		rec.Event("screen.record.dropped", map[string]string{"packets": strconv.FormatInt(n, 10)})
	}
	for b := range mr.queue {
		pkt := &rtp.Packet{}
		if pkt.Unmarshal(b) != nil {
			continue
		}
		sb.Push(pkt)
		for s := sb.Pop(); s != nil; s = sb.Pop() {
			ts := s.PacketTimestamp
			if first {
				first, lastTS = false, ts
			}
			ticks += int64(int32(ts - lastTS))
			lastTS = ts
			if len(s.Data) == 0 {
				continue
			}
			at := mr.base + time.Duration(ticks)*time.Second/90000
			key := s.Data[0]&1 == 0
			if err := rec.Media("vp8", at, s.Data, key); err == nil {
				mr.rm.frames.Add(1)
			}
		}
		reportDrops(false)
	}
	reportDrops(true)
}
