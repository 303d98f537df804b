package rtc_test

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"supportgate/gateway/rtc"
	"supportgate/gateway/rtc/rtctest"
)

// BenchmarkRelay relays n synthetic 2.5 Mbit/s, 30 fps VP8 screen shares
// through one Relay, each recorded by a real recorder.Writer (encrypted,
// hash-chained, on disk), to one pion viewer each, for benchDuration. The
// relay runs in a process of its own (benchproc_test.go), so its CPU time
// is measured directly, and its garbage collector and profile are its own;
// the publishers and viewers run in the benchmark's process. In the same
// run the same n publishers stream directly to n viewers (no gateway): that
// baseline's latency is the floor the relay adds to, and its CPU is what
// the synthetic peers cost without a relay.
//
// Metrics: streams/core (n / relay cores), pps/core (packets received by
// the relay per second per relay core), relay-cores (the relay process's
// CPU / wall time), peer-cores and base-peer-cores (the benchmark
// process's, relayed and direct), added-p99-ms and added-p50-ms (relayed
// minus direct packet latency), x-direct-p99 (relayed p99 / direct p99),
// delivered and base-delivered (packets the viewers got / packets sent),
// recorded (frames recorded / frames sent), rec-dropped (packets dropped
// from the recordings because they fell behind), relay-gc/s and
// relay-gcpause-ms (GC cycles per second and total stop-the-world pause of
// the relay process while streaming), relay-B/pkt and relay-allocs/pkt
// (heap bytes and objects the relay process allocated per packet
// received), p99-ms and base-p99-ms.
//
// -relaycpuprofile FILE and -relaytrace FILE write the relay process's CPU
// profile and execution trace of the streaming phase to FILE-n;
// -relaymemprofile FILE its allocation profiles at the start and the end of
// that phase (FILE-n.start and FILE-n, for go tool pprof -base).
func BenchmarkRelay(b *testing.B) {
	for _, n := range []int{1, 25, 50} {
		b.Run(fmt.Sprintf("streams=%d", n), func(b *testing.B) {
			for range b.N {
				base := runStreams(b, n, false)
				relayed := runStreams(b, n, true)
				wall := relayed.wall.Seconds()
				cores := relayed.relayCPU.Seconds() / wall
				b.ReportMetric(cores, "relay-cores")
				if cores > 0 {
					b.ReportMetric(float64(n)/cores, "streams/core")
					b.ReportMetric(float64(relayed.relayPackets)/wall/cores, "pps/core")
				}
				b.ReportMetric(relayed.cpu.Seconds()/wall, "peer-cores")
				b.ReportMetric(base.cpu.Seconds()/base.wall.Seconds(), "base-peer-cores")
				b.ReportMetric(ms(relayed.p99), "p99-ms")
				b.ReportMetric(ms(base.p99), "base-p99-ms")
				b.ReportMetric(ms(relayed.p99-base.p99), "added-p99-ms")
				b.ReportMetric(ms(relayed.p50-base.p50), "added-p50-ms")
				if base.p99 > 0 {
					b.ReportMetric(float64(relayed.p99)/float64(base.p99), "x-direct-p99")
				}
				b.ReportMetric(float64(relayed.received)/float64(relayed.sent), "delivered")
				b.ReportMetric(float64(base.received)/float64(base.sent), "base-delivered")
				b.ReportMetric(float64(relayed.frames)/float64(relayed.sentFrames), "recorded")
				b.ReportMetric(float64(relayed.recDropped), "rec-dropped")
				b.ReportMetric(float64(relayed.gcs)/wall, "relay-gc/s")
				b.ReportMetric(ms(relayed.gcPause), "relay-gcpause-ms")
				if relayed.relayPackets > 0 {
					b.ReportMetric(float64(relayed.alloc)/float64(relayed.relayPackets), "relay-B/pkt")
					b.ReportMetric(float64(relayed.mallocs)/float64(relayed.relayPackets), "relay-allocs/pkt")
				}
				b.ReportMetric(0, "ns/op")
			}
		})
	}
}

var (
	relayCPUProfile = flag.String("relaycpuprofile", "", "BenchmarkRelay: write the relay process's CPU profile of the streaming phase to `FILE`-n")
	relayMemProfile = flag.String("relaymemprofile", "", "BenchmarkRelay: write the relay process's allocation profiles at the start and end of the streaming phase to `FILE`-n.start and FILE-n")
	relayTrace      = flag.String("relaytrace", "", "BenchmarkRelay: write the relay process's execution trace of the streaming phase to `FILE`-n")
)

const (
	benchDuration = 5 * time.Second
	benchBitrate  = 2_500_000
	benchFPS      = 30
)

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

type runResult struct {
	wall, cpu          time.Duration // cpu: the benchmark process (the peers)
	relayCPU           time.Duration // the relay process
	sent, received     int64
	relayPackets       int64
	sentFrames, frames int64
	recDropped         int64
	gcs                uint32 // the relay process's GC cycles
	gcPause            time.Duration
	alloc, mallocs     uint64 // the relay process's heap allocations
	p50, p99           time.Duration
}

func fileFor(flagValue string, n int) string {
	if flagValue == "" {
		return ""
	}
	return fmt.Sprintf("%s-%d", flagValue, n)
}

// runStreams connects n publisher/viewer pairs (through a relay process
// with a recording each, or directly) and streams for benchDuration.
func runStreams(b *testing.B, n int, relayed bool) runResult {
	b.Helper()
	api := rtctest.NewAPI()
	var proc *relayProc
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var serving sync.WaitGroup
	if relayed {
		proc = startRelayProc(b, fileFor(*relayCPUProfile, n), fileFor(*relayMemProfile, n), fileFor(*relayTrace, n))
		defer proc.close(b)
	}

	pubs := make([]*rtctest.Publisher, n)
	views := make([]*rtctest.Viewer, n)
	for i := range n {
		var pc, vc rtc.Conn
		if relayed {
			pc, vc = proc.open(b, i)
			if _, err := rtctest.Message(pc, "hello", nil); err != nil {
				b.Fatal(err)
			}
		} else {
			pp, ps := rtctest.NewPipe()
			vp, vs := rtctest.NewPipe()
			pc, vc = pp, vp
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
	}()
	// Warm up until every viewer has its track (a keyframe each).
	size := rtctest.FrameSize(benchBitrate, benchFPS)
	warm, stopWarm := context.WithTimeout(ctx, 10*time.Second)
	defer stopWarm()
	for i := range n {
		for views[i].Packets.Load() == 0 {
			pubs[i].WriteFrame(rtctest.Frame(size, true), benchFPS)
			if warm.Err() != nil {
				b.Fatalf("stream %d did not start", i)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	time.Sleep(100 * time.Millisecond) // the warm-up's last packets
	var recv0 int64
	for i := range n {
		recv0 += views[i].Packets.Load()
		views[i].Latencies()
	}
	var st0 procStats
	if relayed {
		st0 = proc.statsAt(b, "start")
	}

	// Stream: each publisher paces its own frames, starts staggered.
	b.ResetTimer()
	start, cpu0 := time.Now(), processCPU()
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
	res := runResult{wall: time.Since(start), cpu: processCPU() - cpu0, sent: sent, sentFrames: sentFrames}
	if relayed {
		st := proc.statsAt(b, "end")
		res.relayCPU = st.CPU - st0.CPU
		res.relayPackets = st.Packets - st0.Packets
		res.frames = st.Frames - st0.Frames
		res.recDropped = st.Dropped - st0.Dropped
		res.gcs = st.NumGC - st0.NumGC
		res.gcPause = st.PauseGC - st0.PauseGC
		res.alloc = st.Alloc - st0.Alloc
		res.mallocs = st.Mallocs - st0.Mallocs
	}
	b.StopTimer()
	var lat []time.Duration
	for i := range n {
		res.received += views[i].Packets.Load()
		lat = append(lat, views[i].Latencies()...)
	}
	res.received -= recv0
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
