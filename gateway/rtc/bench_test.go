package rtc_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"supportgate/gateway/rtc"
	"supportgate/gateway/rtc/rtctest"
)

// BenchmarkRelay relays n synthetic 2.5 Mbit/s, 30 fps VP8 screen shares
// through one Relay, each recorded by a real recorder.Writer (encrypted,
// hash-chained, on disk), to one pion viewer each. The relay runs in a
// process of its own (benchproc_test.go), so its CPU time is measured
// directly, and its garbage collector and profile are its own; the
// publishers and viewers run in the benchmark's process.
//
// The baseline, in the same run: n more publishers stream directly to n
// more viewers (no gateway). Both sets stay connected and take turns,
// benchRounds slices of benchSlice each, direct then relayed, so that both
// see the same machine: on a shared machine the load of the moment moves
// latency more than anything the relay does. The direct slices' latency is
// the floor the relay adds to, and their CPU is what the synthetic peers
// cost without a relay.
//
// Metrics: pps/core (packets received by the relay per second per relay
// core), streams/core (pps/core / the packets per second of one 2.5
// Mbit/s stream: streams that one core relays and records), rate and
// base-rate (packets sent / what n streams at 2.5 Mbit/s send: below 1
// when the publishers could not keep up on a loaded machine), relay-cores
// (the relay process's CPU / streaming time), peer-cores and
// base-peer-cores (the benchmark process's, relayed and direct),
// cpu-pressure and base-cpu-pressure (the share of the streaming time in
// which some task on the machine, any process, waited for a CPU: Linux
// PSI "some", /proc/pressure/cpu), added-p99-ms and added-p50-ms (relayed
// minus direct packet latency, from the send time each packet carries to
// its arrival at the viewer's track), x-direct-p99 (relayed p99 / direct
// p99), delivered and base-delivered (packets the viewers got / packets
// sent), recorded (frames recorded / frames sent), min-delivered and
// min-recorded (the same for the stream that did worst), rec-dropped (packets
// dropped from the recordings because they fell behind), relay-gc/s and
// relay-gcpause-ms (GC cycles per second and total stop-the-world pause of
// the relay process while streaming), relay-B/pkt and relay-allocs/pkt
// (heap bytes and objects the relay process allocated per packet
// received), p99-ms and base-p99-ms.
//
// By default it runs 1, 25, 50 and 100 streams (-relaystreams). The relay
// spends less per packet the busier it is (fewer of the Go scheduler's
// wake-ups of idle threads per packet), so streams/core at 100 streams is
// its capacity per core, and the latency at 25 streams is that of a relay
// with room to spare: at 100 streams the relay and the synthetic peers
// fill both cores of a 2-core machine. -relaycpu N runs the relay alone on
// CPU N (taskset, GOMAXPROCS 1); run the benchmark itself on the other
// CPUs then (taskset -c ...).
//
// -relaycpuprofile FILE and -relaytrace FILE write the relay process's CPU
// profile and execution trace of the streaming phase to FILE-n;
// -relaymemprofile FILE its allocation profiles at the start and the end of
// that phase (FILE-n.start and FILE-n, for go tool pprof -base).
func BenchmarkRelay(b *testing.B) {
	counts, err := streamCounts(*relayStreams)
	if err != nil {
		b.Fatal(err)
	}
	if *relayCPU >= 0 {
		if err := checkPinning(*relayCPU); err != nil {
			b.Fatal(err)
		}
	}
	for _, n := range counts {
		b.Run(fmt.Sprintf("streams=%d", n), func(b *testing.B) {
			for range b.N {
				base, relayed, st := runStreams(b, n)
				wall := relayed.wall.Seconds()
				cores := st.CPU.Seconds() / wall
				b.ReportMetric(cores, "relay-cores")
				if cores > 0 {
					pps := float64(st.Packets) / wall / cores
					b.ReportMetric(pps, "pps/core")
					b.ReportMetric(pps/streamPPS(), "streams/core")
				}
				b.ReportMetric(float64(relayed.sent)/wall/float64(n)/streamPPS(), "rate")
				b.ReportMetric(float64(base.sent)/base.wall.Seconds()/float64(n)/streamPPS(), "base-rate")
				b.ReportMetric(relayed.stall.Seconds()/wall, "cpu-pressure")
				b.ReportMetric(base.stall.Seconds()/base.wall.Seconds(), "base-cpu-pressure")
				b.ReportMetric(relayed.cpu.Seconds()/wall, "peer-cores")
				b.ReportMetric(base.cpu.Seconds()/base.wall.Seconds(), "base-peer-cores")
				p50, p99 := relayed.percentiles()
				bp50, bp99 := base.percentiles()
				b.ReportMetric(ms(p99), "p99-ms")
				b.ReportMetric(ms(bp99), "base-p99-ms")
				b.ReportMetric(ms(p99-bp99), "added-p99-ms")
				b.ReportMetric(ms(p50-bp50), "added-p50-ms")
				if bp99 > 0 {
					b.ReportMetric(float64(p99)/float64(bp99), "x-direct-p99")
				}
				b.ReportMetric(float64(relayed.received)/float64(relayed.sent), "delivered")
				b.ReportMetric(float64(base.received)/float64(base.sent), "base-delivered")
				b.ReportMetric(float64(st.Frames)/float64(relayed.sentFrames), "recorded")
				minDelivered, minRecorded := relayed.leastStream(st.RoomFrames)
				b.ReportMetric(minDelivered, "min-delivered")
				b.ReportMetric(minRecorded, "min-recorded")
				b.ReportMetric(float64(st.Dropped), "rec-dropped")
				b.ReportMetric(float64(st.NumGC)/wall, "relay-gc/s")
				b.ReportMetric(ms(st.PauseGC), "relay-gcpause-ms")
				if st.Packets > 0 {
					b.ReportMetric(float64(st.Alloc)/float64(st.Packets), "relay-B/pkt")
					b.ReportMetric(float64(st.Mallocs)/float64(st.Packets), "relay-allocs/pkt")
				}
				b.ReportMetric(0, "ns/op")
			}
		})
	}
}

var (
	relayCPUProfile = flag.String("relaycpuprofile", "", "BenchmarkRelay: write the relay process's CPU profile of the streaming phase to `FILE`-n")
	relayMemProfile = flag.String("relaymemprofile", "", "BenchmarkRelay: write the relay process's allocation profiles at the start and end of the streaming phase to `FILE`-n.start and FILE-n")
	relayProcs      = flag.Int("relayprocs", 0, "BenchmarkRelay: GOMAXPROCS of the relay process (0: the default, one per core)")
	relayTrace      = flag.String("relaytrace", "", "BenchmarkRelay: write the relay process's execution trace of the streaming phase to `FILE`-n")
	relayStreams    = flag.String("relaystreams", "1,25,50,100", "BenchmarkRelay: the stream counts to run, comma-separated")
	relayCPU        = flag.Int("relaycpu", -1, "BenchmarkRelay: run the relay process on this `CPU` alone (taskset; GOMAXPROCS 1 unless -relayprocs says otherwise); run the benchmark itself on the other CPUs, e.g. under taskset -c 1")
)

const (
	benchRounds  = 5                      // direct and relayed slices, taking turns
	benchSlice   = time.Second            // streaming per slice: 5 s of each in all
	benchSettle  = 200 * time.Millisecond // after a slice, for the last packets
	benchBitrate = 2_500_000
	benchFPS     = 30
)

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// cpuStall is the time, machine-wide, during which some runnable task
// waited for a CPU (Linux pressure stall information); 0 without it.
func cpuStall() time.Duration {
	b, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return 0
	}
	_, after, ok := strings.Cut(string(b), "total=")
	if !ok {
		return 0
	}
	us, _ := strconv.ParseInt(strings.Fields(after)[0], 10, 64)
	return time.Duration(us) * time.Microsecond
}

// streamPPS is the packets per second one synthetic stream sends.
func streamPPS() float64 {
	size := rtctest.FrameSize(benchBitrate, benchFPS)
	return float64((size+rtctest.MTU-1)/rtctest.MTU) * benchFPS
}

// streamSet is n publisher/viewer pairs, relayed or direct.
type streamSet struct {
	pubs  []*rtctest.Publisher
	views []*rtctest.Viewer
}

// modeResult adds up one set's slices.
type modeResult struct {
	wall, cpu                  time.Duration // streaming time; the benchmark process's CPU (the peers)
	stall                      time.Duration // the machine's CPU pressure: time some task waited for a CPU
	sent, received, sentFrames int64
	lat                        []time.Duration
	// per stream: packets sent and received, frames sent
	sentBy, receivedBy, framesBy []int64
}

// leastStream returns the smallest share of its packets one stream's
// viewer got, and the smallest share of its frames one stream's recording
// got (recorded[i] frames for stream i).
func (r *modeResult) leastStream(recorded []int64) (delivered, frames float64) {
	delivered, frames = 1, 1
	for i := range r.sentBy {
		if r.sentBy[i] > 0 {
			delivered = min(delivered, float64(r.receivedBy[i])/float64(r.sentBy[i]))
		}
		if r.framesBy[i] > 0 {
			got := int64(0)
			if i < len(recorded) {
				got = recorded[i]
			}
			frames = min(frames, float64(got)/float64(r.framesBy[i]))
		}
	}
	return delivered, frames
}

func (r *modeResult) percentiles() (p50, p99 time.Duration) {
	if len(r.lat) == 0 {
		return 0, 0
	}
	slices.Sort(r.lat)
	return r.lat[len(r.lat)/2], r.lat[len(r.lat)*99/100]
}

// streamCounts parses -relaystreams.
func streamCounts(list string) ([]int, error) {
	var counts []int
	for f := range strings.SplitSeq(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-relaystreams: %q is not a stream count", f)
		}
		counts = append(counts, n)
	}
	return counts, nil
}

// checkPinning makes sure that this process, which runs the synthetic
// peers, may not run on cpu, which -relaycpu gives the relay alone.
func checkPinning(cpu int) error {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return fmt.Errorf("-relaycpu needs Linux's /proc: %w", err)
	}
	for line := range strings.Lines(string(status)) {
		list, ok := strings.CutPrefix(line, "Cpus_allowed_list:")
		if !ok {
			continue
		}
		for r := range strings.SplitSeq(strings.TrimSpace(list), ",") {
			lo, hi, _ := strings.Cut(r, "-")
			if hi == "" {
				hi = lo
			}
			l, err1 := strconv.Atoi(lo)
			h, err2 := strconv.Atoi(hi)
			if err1 != nil || err2 != nil {
				return fmt.Errorf("-relaycpu: cannot read Cpus_allowed_list %q", list)
			}
			if l <= cpu && cpu <= h {
				return fmt.Errorf("-relaycpu %d: the benchmark itself may run on CPU %d too (allowed: %s); run it on the others, e.g. taskset -c %d go test ...", cpu, cpu, strings.TrimSpace(list), 1-min(cpu, 1))
			}
		}
		return nil
	}
	return errors.New("-relaycpu: no Cpus_allowed_list in /proc/self/status")
}

func fileFor(flagValue string, n int) string {
	if flagValue == "" {
		return ""
	}
	return fmt.Sprintf("%s-%d", flagValue, n)
}

// connect makes n publisher/viewer pairs over the given connections and
// waits until every viewer has its track.
func connect(b *testing.B, api *webrtc.API, n int, conns func(i int) (pub, view rtc.Conn)) *streamSet {
	b.Helper()
	set := &streamSet{pubs: make([]*rtctest.Publisher, n), views: make([]*rtctest.Viewer, n)}
	for i := range n {
		pc, vc := conns(i)
		// Concurrently: without a relay each waits for the other.
		verr := make(chan error, 1)
		go func() {
			var err error
			set.views[i], err = rtctest.View(api, vc, true)
			verr <- err
		}()
		var err error
		if set.pubs[i], err = rtctest.Publish(api, pc); err != nil {
			b.Fatal(err)
		}
		if err := <-verr; err != nil {
			b.Fatal(err)
		}
	}
	size := rtctest.FrameSize(benchBitrate, benchFPS)
	warm, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	for i := range n {
		for set.views[i].Packets.Load() == 0 {
			set.pubs[i].WriteFrame(rtctest.Frame(size, true), benchFPS)
			if warm.Err() != nil {
				b.Fatalf("stream %d did not start", i)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return set
}

func (set *streamSet) close() {
	for i := range set.pubs {
		set.pubs[i].Close()
		set.views[i].Close()
	}
}

// stream runs one slice: each publisher paces its own frames, starts
// staggered, for benchSlice; then the last packets get benchSettle to
// land. It adds to res.
func (set *streamSet) stream(res *modeResult) {
	n := len(set.pubs)
	if res.sentBy == nil {
		res.sentBy, res.receivedBy, res.framesBy = make([]int64, n), make([]int64, n), make([]int64, n)
	}
	recv0 := make([]int64, n)
	for i, v := range set.views {
		recv0[i] = v.Packets.Load()
		v.Latencies() // the warm-up's or the settle's stragglers
	}
	size := rtctest.FrameSize(benchBitrate, benchFPS)
	// The frames are only read: one of each kind serves every publisher.
	keyFrame, deltaFrame := rtctest.Frame(size, true), rtctest.Frame(size, false)
	start, cpu0, stall0 := time.Now(), processCPU(), cpuStall()
	end := start.Add(benchSlice)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * time.Second / benchFPS / time.Duration(n))
			t := time.NewTicker(time.Second / benchFPS)
			defer t.Stop()
			var s, f int64
			for k := 0; time.Now().Before(end); k++ {
				<-t.C
				frame := deltaFrame
				if k%(benchFPS*10) == 0 {
					frame = keyFrame
				}
				m, err := set.pubs[i].WriteFrame(frame, benchFPS)
				if err != nil {
					return
				}
				s += int64(m)
				f++
			}
			mu.Lock()
			res.sent += s
			res.sentFrames += f
			res.sentBy[i] += s
			res.framesBy[i] += f
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.wall += time.Since(start)
	res.stall += cpuStall() - stall0
	time.Sleep(benchSettle)
	res.cpu += processCPU() - cpu0
	for i, v := range set.views {
		got := v.Packets.Load() - recv0[i]
		res.received += got
		res.receivedBy[i] += got
		res.lat = append(res.lat, v.Latencies()...)
	}
}

// runStreams connects n direct and n relayed publisher/viewer pairs (the
// relayed ones through a relay process with a recording each) and lets
// them take turns streaming. It returns the direct and relayed results
// and the relay process's counters over the relayed slices.
func runStreams(b *testing.B, n int) (base, relayed modeResult, st procStats) {
	b.Helper()
	api := rtctest.NewAPI()
	proc := startRelayProc(b, fileFor(*relayCPUProfile, n), fileFor(*relayMemProfile, n), fileFor(*relayTrace, n))
	defer proc.close(b)
	var serving sync.WaitGroup
	defer serving.Wait()
	direct := connect(b, api, n, func(int) (rtc.Conn, rtc.Conn) {
		pp, ps := rtctest.NewPipe()
		vp, vs := rtctest.NewPipe()
		serving.Add(1)
		go func() { defer serving.Done(); directSignal(ps, vs) }()
		return pp, vp
	})
	defer direct.close()
	relayedSet := connect(b, api, n, func(i int) (rtc.Conn, rtc.Conn) {
		pc, vc := proc.open(b, i)
		if _, err := rtctest.Message(pc, "hello", nil); err != nil {
			b.Fatal(err)
		}
		return pc, vc
	})
	defer relayedSet.close()
	time.Sleep(benchSettle) // the warm-up's last packets

	b.ResetTimer()
	for r := range benchRounds {
		direct.stream(&base)
		var first, last string // the relay's profile and trace span the rounds
		if r == 0 {
			first = "start"
		}
		if r == benchRounds-1 {
			last = "end"
		}
		st0 := proc.statsAt(b, first)
		relayedSet.stream(&relayed)
		st.add(st0, proc.statsAt(b, last))
	}
	b.StopTimer()
	return base, relayed, st
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
