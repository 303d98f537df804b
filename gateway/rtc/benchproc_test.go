package rtc_test

// The relay of BenchmarkRelay runs in a child process (this test binary
// started again with relayChildEnv set), so that its CPU time, its profile
// and its garbage collector are its own and not mixed with the synthetic
// publishers' and viewers' in the benchmark's process. The two talk JSON
// lines over the child's stdin and stdout: the parent opens streams and
// carries each participant's signaling messages; the child reports its
// counters when asked.

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"

	"supportgate/gateway/rtc"
	"supportgate/recorder"
)

const (
	relayChildEnv   = "SUPPORTGATE_RTC_BENCH_RELAY"
	relayProfileEnv = "SUPPORTGATE_RTC_BENCH_RELAY_CPUPROFILE"
	relayMemEnv     = "SUPPORTGATE_RTC_BENCH_RELAY_MEMPROFILE"
	relayTraceEnv   = "SUPPORTGATE_RTC_BENCH_RELAY_TRACE"
)

func TestMain(m *testing.M) {
	if os.Getenv(relayChildEnv) != "" {
		if err := relayChild(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "relay child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// procMsg is one line between the benchmark and its relay process.
//
// Parent to child: "open" (stream: create its recording and room and serve
// a publisher on conn 2*stream and a viewer on conn 2*stream+1), "msg"
// (conn, msg: for that participant's ReadJSON), "stats" (mark "start"
// also starts the profile and trace, "end" stops them). Closing stdin
// ends every room, closes the relay and the recordings and ends the child.
// Child to parent: "msg" (conn, msg: from that participant's WriteJSON),
// "close" (conn), "stats" (stats).
type procMsg struct {
	Op     string       `json:"op"`
	Stream int          `json:"stream,omitempty"`
	Conn   int          `json:"conn,omitempty"`
	Msg    *rtc.Message `json:"msg,omitempty"`
	Mark   string       `json:"mark,omitempty"`
	Stats  *procStats   `json:"stats,omitempty"`
}

// procStats are the relay process's counters, summed over its rooms.
type procStats struct {
	CPU      time.Duration `json:"cpu"`       // user + system time of the process
	Packets  int64         `json:"packets"`   // RTP packets received from publishers
	Frames   int64         `json:"frames"`    // frames recorded
	Dropped  int64         `json:"dropped"`   // packets dropped from the recordings
	NumGC    uint32        `json:"num_gc"`    // completed GC cycles
	PauseGC  time.Duration `json:"pause_gc"`  // total stop-the-world pause
	HeapLive uint64        `json:"heap_live"` // bytes of live heap objects
	Alloc    uint64        `json:"alloc"`     // bytes allocated so far
	Mallocs  uint64        `json:"mallocs"`   // heap objects allocated so far
	// RoomFrames are the frames recorded per stream, in the order opened.
	RoomFrames []int64 `json:"room_frames"`
}

// add adds the difference end - start.
func (st *procStats) add(start, end procStats) {
	st.CPU += end.CPU - start.CPU
	st.Packets += end.Packets - start.Packets
	st.Frames += end.Frames - start.Frames
	st.Dropped += end.Dropped - start.Dropped
	st.NumGC += end.NumGC - start.NumGC
	st.PauseGC += end.PauseGC - start.PauseGC
	st.Alloc += end.Alloc - start.Alloc
	st.Mallocs += end.Mallocs - start.Mallocs
	if st.RoomFrames == nil {
		st.RoomFrames = make([]int64, len(end.RoomFrames))
	}
	for i := range min(len(st.RoomFrames), len(start.RoomFrames), len(end.RoomFrames)) {
		st.RoomFrames[i] += end.RoomFrames[i] - start.RoomFrames[i]
	}
}

// lineWriter serializes JSON lines onto one writer.
type lineWriter struct {
	mu  sync.Mutex // guards enc
	enc *json.Encoder
}

func (w *lineWriter) send(m procMsg) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.enc.Encode(m)
}

// procConn is one participant's message connection carried over the
// process pipe: an rtc.Conn on either side.
type procConn struct {
	id   int
	out  *lineWriter
	in   chan rtc.Message
	done chan struct{}
	once sync.Once
	// onClose tells the other side (the child does, the parent doesn't).
	onClose func()
}

func newProcConn(id int, out *lineWriter) *procConn {
	return &procConn{id: id, out: out, in: make(chan rtc.Message, 64), done: make(chan struct{})}
}

var errProcClosed = errors.New("relay process: connection closed")

func (c *procConn) ReadJSON(v any) error {
	var m rtc.Message
	select {
	case m = <-c.in:
	default:
		select {
		case m = <-c.in:
		case <-c.done:
			return errProcClosed
		}
	}
	p, ok := v.(*rtc.Message)
	if !ok {
		return fmt.Errorf("relay process: cannot read into %T", v)
	}
	*p = m
	return nil
}

func (c *procConn) WriteJSON(v any) error {
	select {
	case <-c.done:
		return errProcClosed
	default:
	}
	var m rtc.Message
	switch v := v.(type) {
	case rtc.Message:
		m = v
	case *rtc.Message:
		m = *v
	default:
		return fmt.Errorf("relay process: cannot send %T", v)
	}
	return c.out.send(procMsg{Op: "msg", Conn: c.id, Msg: &m})
}

func (c *procConn) Close() error {
	c.once.Do(func() {
		close(c.done)
		if c.onClose != nil {
			c.onClose()
		}
	})
	return nil
}

// deliver hands m to the connection's reader; it gives up once the
// connection is closed.
func (c *procConn) deliver(m rtc.Message) {
	select {
	case c.in <- m:
	case <-c.done:
	}
}

// relayChild is the relay process: one Relay, a real recorder.Writer per
// stream in a temporary directory.
func relayChild(stdin io.Reader, stdout io.Writer) error {
	dir, err := os.MkdirTemp("", "rtcbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	relay, err := rtc.New(rtc.Config{Loopback: true, UDPPortMin: 45000, UDPPortMax: 46999})
	if err != nil {
		return err
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return err
	}
	_, signer, err := ed25519.GenerateKey(nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &lineWriter{enc: json.NewEncoder(stdout)}
	var (
		serving sync.WaitGroup
		conns   = map[int]*procConn{}
		rooms   []*rtc.Room
		recs    []*recorder.Writer
	)
	serve := func(room *rtc.Room, k int, role rtc.Role, name string) {
		c := newProcConn(k, out)
		c.onClose = func() { out.send(procMsg{Op: "close", Conn: k}) }
		conns[k] = c
		serving.Add(1)
		go func() { defer serving.Done(); room.Serve(c, role, name) }()
	}
	var profile *os.File
	var traceFile *os.File
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m procMsg
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return fmt.Errorf("bad line: %w", err)
		}
		switch m.Op {
		case "open":
			name := fmt.Sprintf("s%d", m.Stream)
			w, err := recorder.Create(filepath.Join(dir, name+".sgrec"), recorder.WriterConfig{
				RecordingID: name, SessionID: name, Recipients: []age.Recipient{id.Recipient()}, Signer: signer,
			})
			if err != nil {
				return err
			}
			recs = append(recs, w)
			room, err := relay.Room(ctx, name, w, rtc.RoomOptions{Chat: true})
			if err != nil {
				return err
			}
			rooms = append(rooms, room)
			serve(room, 2*m.Stream, rtc.Publisher, "customer")
			serve(room, 2*m.Stream+1, rtc.Viewer, "agent")
		case "msg":
			c := conns[m.Conn]
			if c == nil || m.Msg == nil {
				return fmt.Errorf("message for unknown connection %d", m.Conn)
			}
			c.deliver(*m.Msg)
		case "stats":
			switch {
			case m.Mark == "start" && os.Getenv(relayProfileEnv) != "":
				if profile, err = os.Create(os.Getenv(relayProfileEnv)); err != nil {
					return err
				}
				if err := pprof.StartCPUProfile(profile); err != nil {
					return err
				}
			case m.Mark == "end" && profile != nil:
				pprof.StopCPUProfile()
				profile.Close()
				profile = nil
			}
			switch {
			case m.Mark == "start" && os.Getenv(relayTraceEnv) != "":
				if traceFile, err = os.Create(os.Getenv(relayTraceEnv)); err != nil {
					return err
				}
				if err := trace.Start(traceFile); err != nil {
					return err
				}
			case m.Mark == "end" && traceFile != nil:
				trace.Stop()
				traceFile.Close()
				traceFile = nil
			}
			if name := os.Getenv(relayMemEnv); name != "" && m.Mark != "" {
				if m.Mark == "start" {
					name += ".start" // for pprof -base
				}
				if err := writeHeapProfile(name); err != nil {
					return err
				}
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			st := &procStats{CPU: processCPU(), NumGC: ms.NumGC, PauseGC: time.Duration(ms.PauseTotalNs), HeapLive: ms.HeapAlloc,
				Alloc: ms.TotalAlloc, Mallocs: ms.Mallocs}
			for _, rm := range rooms {
				st.Packets += rm.Packets()
				st.Frames += rm.Frames()
				st.RoomFrames = append(st.RoomFrames, rm.Frames())
				if d, ok := any(rm).(interface{ RecordDropped() int64 }); ok { // not before the recording queue
					st.Dropped += d.RecordDropped()
				}
			}
			out.send(procMsg{Op: "stats", Stats: st})
		default:
			return fmt.Errorf("unknown op %q", m.Op)
		}
	}
	if profile != nil {
		pprof.StopCPUProfile()
		profile.Close()
	}
	if traceFile != nil {
		trace.Stop()
		traceFile.Close()
	}
	// The benchmark closed stdin: end every session at once.
	cancel()
	for _, c := range conns {
		c.Close()
	}
	serving.Wait()
	relay.Close()
	for _, w := range recs {
		if err := w.Close(); err != nil {
			return err
		}
	}
	return sc.Err()
}

// writeHeapProfile writes the allocations so far (as of a GC it forces).
func writeHeapProfile(name string) error {
	runtime.GC()
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup("allocs").WriteTo(f, 0)
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// relayProc is the benchmark's handle on a relay process.
type relayProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *lineWriter
	done  chan struct{} // the reader of stdout has stopped

	mu    sync.Mutex // guards conns
	conns map[int]*procConn
	stats chan *procStats
}

// startRelayProc starts this test binary as the relay process; profile,
// memProfile and traceOut, if set, name files for its CPU profile of the
// measured phase, its allocation profile and its execution trace of the
// measured phase.
func startRelayProc(b *testing.B, profile, memProfile, traceOut string) *relayProc {
	b.Helper()
	cmd := exec.Command(os.Args[0])
	procs := *relayProcs
	if *relayCPU >= 0 {
		// taskset sets the affinity before the relay's runtime starts, so
		// every thread of it inherits it.
		cmd = exec.Command("taskset", "-c", strconv.Itoa(*relayCPU), os.Args[0])
		if procs == 0 {
			procs = 1
		}
	}
	cmd.Env = append(os.Environ(), relayChildEnv+"=1", relayProfileEnv+"="+profile, relayMemEnv+"="+memProfile, relayTraceEnv+"="+traceOut)
	if procs > 0 {
		cmd.Env = append(cmd.Env, fmt.Sprintf("GOMAXPROCS=%d", procs))
	}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p := &relayProc{cmd: cmd, stdin: stdin, out: &lineWriter{enc: json.NewEncoder(stdin)},
		done: make(chan struct{}), conns: map[int]*procConn{}, stats: make(chan *procStats, 1)}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m procMsg
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue
			}
			switch m.Op {
			case "msg":
				if c := p.conn(m.Conn); c != nil && m.Msg != nil {
					c.deliver(*m.Msg)
				}
			case "close":
				if c := p.conn(m.Conn); c != nil {
					c.Close()
				}
			case "stats":
				p.stats <- m.Stats
			}
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	}()
	return p
}

func (p *relayProc) conn(k int) *procConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns[k]
}

// open starts stream i in the relay and returns the publisher's and the
// viewer's connections.
func (p *relayProc) open(b *testing.B, i int) (pub, view *procConn) {
	b.Helper()
	pub, view = newProcConn(2*i, p.out), newProcConn(2*i+1, p.out)
	p.mu.Lock()
	p.conns[2*i], p.conns[2*i+1] = pub, view
	p.mu.Unlock()
	if err := p.out.send(procMsg{Op: "open", Stream: i}); err != nil {
		b.Fatal(err)
	}
	return pub, view
}

// statsAt asks the relay process for its counters; mark "start" and "end"
// bound its profile and trace.
func (p *relayProc) statsAt(b *testing.B, mark string) procStats {
	b.Helper()
	if err := p.out.send(procMsg{Op: "stats", Mark: mark}); err != nil {
		b.Fatal(err)
	}
	select {
	case st := <-p.stats:
		return *st
	case <-p.done:
		b.Fatal("relay process ended")
	case <-time.After(30 * time.Second):
		b.Fatal("relay process did not answer")
	}
	return procStats{}
}

// close ends the relay process (every room, then the relay and the
// recordings) and waits for it.
func (p *relayProc) close(b *testing.B) {
	b.Helper()
	p.stdin.Close()
	<-p.done
	if err := p.cmd.Wait(); err != nil {
		b.Errorf("relay process: %v", err)
	}
}
