package rtc_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"

	"supportgate/gateway/rtc"
	"supportgate/gateway/rtc/rtctest"
	"supportgate/recorder"
)

// BenchmarkRelay relays n synthetic 2.5 Mbit/s, 30 fps VP8 screen shares
// through one Relay, each recorded by a real recorder.Writer (encrypted,
// hash-chained, on disk), to one pion viewer each, for benchDuration. In
// the same run the same n publishers stream directly to n viewers (no
// gateway): that baseline's CPU is subtracted to get the relay's own, and
// its latency is the floor the relay adds to.
//
// Metrics: streams/core (n / relay cores), pps/core (packets received by
// the relay per second per relay core), relay-cores, added-p99-ms and
// added-p50-ms (relayed minus direct packet latency), delivered (packets
// the viewers got / packets sent), p99-ms (relayed) and base-p99-ms.
func BenchmarkRelay(b *testing.B) {
	for _, n := range []int{1, 25, 50} {
		b.Run(fmt.Sprintf("streams=%d", n), func(b *testing.B) {
			for range b.N {
				base := runStreams(b, n, false)
				relayed := runStreams(b, n, true)
				relayCPU := relayed.cpu - base.cpu
				cores := relayCPU.Seconds() / relayed.wall.Seconds()
				b.ReportMetric(cores, "relay-cores")
				if cores > 0 {
					b.ReportMetric(float64(n)/cores, "streams/core")
					b.ReportMetric(float64(relayed.relayPackets)/relayed.wall.Seconds()/cores, "pps/core")
				}
				b.ReportMetric(ms(relayed.p99), "p99-ms")
				b.ReportMetric(ms(base.p99), "base-p99-ms")
				b.ReportMetric(ms(relayed.p99-base.p99), "added-p99-ms")
				b.ReportMetric(ms(relayed.p50-base.p50), "added-p50-ms")
				b.ReportMetric(float64(relayed.received)/float64(relayed.sent), "delivered")
				b.ReportMetric(float64(relayed.frames)/float64(relayed.sentFrames), "recorded")
				b.ReportMetric(0, "ns/op")
			}
		})
	}
}

const (
	benchDuration = 5 * time.Second
	benchBitrate  = 2_500_000
	benchFPS      = 30
)

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

type runResult struct {
	wall, cpu          time.Duration
	sent, received     int64
	relayPackets       int64
	sentFrames, frames int64
	p50, p99           time.Duration
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runStreams connects n publisher/viewer pairs (through a relay with a
// recording each, or directly) and streams for benchDuration.
func runStreams(b *testing.B, n int, relayed bool) runResult {
	b.Helper()
	api := rtctest.NewAPI()
	var relay *rtc.Relay
	var rooms []*rtc.Room
	var recs []*recorder.Writer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var serving sync.WaitGroup
	if relayed {
		var err error
		relay, err = rtc.New(rtc.Config{Loopback: true, UDPPortMin: 45000, UDPPortMax: 46999})
		if err != nil {
			b.Fatal(err)
		}
		defer relay.Close()
	}
	id, _ := age.GenerateX25519Identity()
	_, signer, _ := ed25519.GenerateKey(nil)
	dir := b.TempDir()

	pubs := make([]*rtctest.Publisher, n)
	views := make([]*rtctest.Viewer, n)
	for i := range n {
		pc, ps := rtctest.NewPipe()
		vc, vs := rtctest.NewPipe()
		if relayed {
			w, err := recorder.Create(filepath.Join(dir, fmt.Sprintf("s%d.sgrec", i)), recorder.WriterConfig{
				RecordingID: fmt.Sprintf("s%d", i), SessionID: fmt.Sprintf("s%d", i),
				Recipients: []age.Recipient{id.Recipient()}, Signer: signer,
			})
			if err != nil {
				b.Fatal(err)
			}
			recs = append(recs, w)
			room, err := relay.Room(ctx, fmt.Sprintf("s%d", i), w)
			if err != nil {
				b.Fatal(err)
			}
			rooms = append(rooms, room)
			serving.Add(2)
			go func() { defer serving.Done(); room.Serve(ps, rtc.Publisher, "customer") }()
			go func() { defer serving.Done(); room.Serve(vs, rtc.Viewer, "agent") }()
			if _, err := rtctest.Message(pc, "hello", nil); err != nil {
				b.Fatal(err)
			}
		} else {
			serving.Add(1)
			go func() { defer serving.Done(); directSignal(ps, vs) }()
		}
		// Concurrently: without a relay each waits for the other.
		verr := make(chan error, 1)
		go func() {
			var err error
			views[i], err = rtctest.View(api, vc, true)
			verr <- err
		}()
		var err error
		if pubs[i], err = rtctest.Publish(api, pc); err != nil {
			b.Fatal(err)
		}
		if err := <-verr; err != nil {
			b.Fatal(err)
		}
	}
	defer func() {
		for i := range n {
			pubs[i].Close()
			views[i].Close()
		}
		cancel()
		serving.Wait()
		for _, w := range recs {
			w.Close()
		}
	}()
	// Warm up until every viewer has its track (a keyframe each).
	size := rtctest.FrameSize(benchBitrate, benchFPS)
	warm, stopWarm := context.WithTimeout(context.Background(), 10*time.Second)
	defer stopWarm()
	for i := range n {
		for views[i].Packets.Load() == 0 {
			pubs[i].WriteFrame(rtctest.Frame(size, true), benchFPS)
			if warm.Err() != nil {
				b.Fatalf("stream %d did not start", i)
			}
			time.Sleep(20 * time.Millisecond)
		}
		views[i].Latencies()
	}
	var recv0, relay0, frames0 int64
	for i := range n {
		recv0 += views[i].Packets.Load()
		if relayed {
			relay0 += rooms[i].Packets()
			frames0 += rooms[i].Frames()
		}
	}

	// Stream: each publisher paces its own frames, starts staggered.
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var sent, sentFrames int64
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * time.Second / benchFPS / time.Duration(n))
			t := time.NewTicker(time.Second / benchFPS)
			defer t.Stop()
			var s, f int64
			end := start.Add(benchDuration)
			for k := 0; time.Now().Before(end); k++ {
				<-t.C
				m, err := pubs[i].WriteFrame(rtctest.Frame(size, k%(benchFPS*10) == 0), benchFPS)
				if err != nil {
					return
				}
				s += int64(m)
				f++
			}
			mu.Lock()
			sent += s
			sentFrames += f
			mu.Unlock()
		}()
	}
	wg.Wait()
	time.Sleep(200 * time.Millisecond) // let the last packets land
	res := runResult{wall: time.Since(start), cpu: cpuTime() - cpu0, sent: sent, sentFrames: sentFrames}
	b.StopTimer()
	var lat []time.Duration
	for i := range n {
		res.received += views[i].Packets.Load()
		lat = append(lat, views[i].Latencies()...)
		if relayed {
			res.relayPackets += rooms[i].Packets()
			res.frames += rooms[i].Frames()
		}
	}
	res.received -= recv0
	res.relayPackets -= relay0
	res.frames -= frames0
	slices.Sort(lat)
	if len(lat) > 0 {
		res.p50 = lat[len(lat)/2]
		res.p99 = lat[len(lat)*99/100]
	}
	return res
}

// directSignal connects a publisher and a viewer without a relay: the
// publisher's offer goes to the viewer and the answer back.
func directSignal(pub, view *rtctest.Pipe) {
	offer, err := rtctest.Message(pub, "offer", nil)
	if err != nil {
		return
	}
	view.WriteJSON(offer)
	answer, err := rtctest.Message(view, "answer", nil)
	if err != nil {
		return
	}
	pub.WriteJSON(answer)
}
