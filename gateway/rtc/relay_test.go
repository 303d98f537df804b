package rtc_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"supportgate/gateway/rtc"
	"supportgate/gateway/rtc/rtctest"
	"supportgate/recorder"
	"supportgate/recorder/recordertest"
)

// fakeRec records what a room hands its recorder.
type fakeRec struct {
	// gate, if set, holds every Media call until it is closed: a disk
	// that does not keep up.
	gate chan struct{}

	mu      sync.Mutex
	frames  int
	keys    int
	chats   []string
	events  []string
	details []map[string]string
}

func (f *fakeRec) Media(codec string, ts time.Duration, frame []byte, key bool) error {
	if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.frames++
	if key {
		f.keys++
	}
	return nil
}

func (f *fakeRec) Chat(from, text string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.chats = append(f.chats, from+": "+text)
	return nil
}

func (f *fakeRec) Event(kind string, detail map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, kind)
	f.details = append(f.details, detail)
	return nil
}

func TestRelayPionToPion(t *testing.T) {
	baseGoroutines := runtime.NumGoroutine()
	relay, err := rtc.New(rtc.Config{Loopback: true, UDPPortMin: 40000, UDPPortMax: 40100})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	sctx, endSession := context.WithCancel(context.Background())
	defer endSession()
	rec := &fakeRec{}
	room, err := relay.Room(sctx, "s1", rec, rtc.RoomOptions{Chat: true})
	if err != nil {
		t.Fatal(err)
	}
	api := rtctest.NewAPI()

	var serving sync.WaitGroup
	serve := servePipes(room, &serving)
	pubConn, pub := publishTo(t, serve, api)
	defer pub.Close()

	viewConn := serve(rtc.Viewer, "alice")
	view, err := rtctest.View(api, viewConn, true)
	if err != nil {
		t.Fatal(err)
	}
	defer view.Close()

	// Send 30 fps until the viewer has seen 60 frames' worth of packets.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(time.Second / 30)
	defer tick.Stop()
	size := rtctest.FrameSize(2_500_000, 30)
	for i := 0; view.Packets.Load() < 60*int64((size+rtctest.MTU-1)/rtctest.MTU); i++ {
		select {
		case <-ctx.Done():
			t.Fatalf("viewer got %d packets", view.Packets.Load())
		case <-tick.C:
		}
		if _, err := pub.WriteFrame(rtctest.Frame(size, i%60 == 0), 30); err != nil {
			t.Fatal(err)
		}
	}
	if pub.Keyframes.Load() == 0 {
		t.Errorf("publisher got no keyframe request when the viewer joined")
	}
	if pub.Feedback.Load() == 0 {
		t.Errorf("publisher got no transport-wide congestion control feedback")
	}
	// The relay reads the publisher's sender reports, so its receiver
	// reports (one a second) say when it got the last one.
	for i := 0; pub.ReportsWithLSR.Load() == 0; i++ {
		select {
		case <-ctx.Done():
			t.Fatalf("no receiver report with the last sender report's time (LSR)")
		case <-tick.C:
		}
		pub.WriteFrame(rtctest.Frame(size, false), 30)
	}

	// Chat both ways.
	if err := viewConn.WriteJSON(rtc.Message{Type: "chat", Text: "hello from alice"}); err != nil {
		t.Fatal(err)
	}
	m, err := rtctest.Message(pubConn, "chat", nil)
	if err != nil || m.From != "alice" || m.Text != "hello from alice" {
		t.Fatalf("customer got chat %+v, %v", m, err)
	}
	pubConn.WriteJSON(rtc.Message{Type: "chat", Text: "hi alice"})
	if m, err = rtctest.Message(viewConn, "chat", nil); err != nil || m.Text != "hello from alice" {
		t.Fatalf("agent got own chat %+v, %v", m, err)
	}
	if m, err = rtctest.Message(viewConn, "chat", nil); err != nil || m.From != "customer" {
		t.Fatalf("agent got chat %+v, %v", m, err)
	}

	// The session ends: both connections say so and both PeerConnections close within 1 s.
	start := time.Now()
	endSession()
	for _, c := range []*rtctest.Pipe{pubConn, viewConn} {
		if _, err := rtctest.Message(c, "ended", nil); err != nil {
			t.Fatalf("no ended message: %v", err)
		}
	}
	serving.Wait()
	for time.Since(start) < time.Second && (view.PC.ConnectionState() != webrtc.PeerConnectionStateClosed && view.PC.ICEConnectionState() != webrtc.ICEConnectionStateDisconnected) {
		time.Sleep(10 * time.Millisecond)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("session end took %v to close the relay, want < 1s", d)
	}
	relay.Close()

	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.frames < 50 || rec.keys == 0 {
		t.Errorf("recorded %d frames, %d keyframes; want >= 50 and > 0", rec.frames, rec.keys)
	}
	if len(rec.chats) != 2 {
		t.Errorf("recorded chat %q, want 2 messages", rec.chats)
	}
	lat := view.Latencies()
	t.Logf("relayed %d packets, recorded %d frames; %d latency samples", view.Packets.Load(), rec.frames, len(lat))

	// Nothing of the relay or the peers outlives them.
	pub.Close()
	view.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > baseGoroutines && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > baseGoroutines {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines left, %d before:\n%s", n, baseGoroutines, buf[:runtime.Stack(buf, true)])
	}
}

// A recording that stops keeping up (its Media calls block) must not delay
// what the viewers get: the packets it misses are dropped from the
// recording only, counted, and the count is recorded.
func TestRelaySlowRecorder(t *testing.T) {
	relay, err := rtc.New(rtc.Config{Loopback: true, UDPPortMin: 40101, UDPPortMax: 40200})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	var serving sync.WaitGroup
	defer serving.Wait()
	sctx, endSession := context.WithCancel(context.Background())
	defer endSession()
	rec := &fakeRec{gate: make(chan struct{})}
	var once sync.Once
	unblock := func() { once.Do(func() { close(rec.gate) }) }
	defer unblock()
	room, err := relay.Room(sctx, "s1", rec, rtc.RoomOptions{Chat: true})
	if err != nil {
		t.Fatal(err)
	}
	api := rtctest.NewAPI()
	serve := servePipes(room, &serving)
	_, pub := publishTo(t, serve, api)
	defer pub.Close()
	view, err := rtctest.View(api, serve(rtc.Viewer, "alice"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer view.Close()

	// Until the viewer has its track, then 120 frames (about 1,100
	// packets, twice what the recording queue holds) while the recording
	// is stuck.
	size := rtctest.FrameSize(2_500_000, 30)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for view.Packets.Load() == 0 {
		if _, err := pub.WriteFrame(rtctest.Frame(size, true), 30); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
			t.Fatal("the viewer got no packets")
		case <-time.After(20 * time.Millisecond):
		}
	}
	var sent int64
	got0 := view.Packets.Load()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for i := range 120 {
		<-tick.C
		n, err := pub.WriteFrame(rtctest.Frame(size, i == 0), 30)
		if err != nil {
			t.Fatal(err)
		}
		sent += int64(n)
	}
	for view.Packets.Load()-got0 < sent*9/10 {
		select {
		case <-ctx.Done():
			t.Fatalf("with the recording stuck, the viewer got %d packets of %d sent", view.Packets.Load()-got0, sent)
		case <-time.After(10 * time.Millisecond):
		}
	}
	dropped := room.RecordDropped()
	if dropped == 0 {
		t.Fatalf("RecordDropped = 0 after %d packets with the recording stuck", sent)
	}

	unblock() // the disk catches up
	endSession()
	relay.Close() // waits for the room and its recording goroutines
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var got string
	for i, kind := range rec.events {
		if kind == "screen.record.dropped" {
			got = rec.details[i]["packets"]
		}
	}
	if want := strconv.FormatInt(room.RecordDropped(), 10); got != want {
		t.Errorf("last screen.record.dropped event says %q packets, want %s (events %q)", got, want, rec.events)
	}
	t.Logf("%d packets sent while the recording was stuck, %d dropped from it, %d frames recorded", sent, dropped, rec.frames)
}

// A viewer that loses packets asks for them again (NACK), and the relay
// resends them from what it sent (nackResponder), through the real pion
// stack on both sides.
func TestRelayResendsLost(t *testing.T) {
	_, _, serve, _ := testRoom(t, 40200, &fakeRec{})
	_, pub := publishTo(t, serve, rtctest.NewAPI())
	defer pub.Close()
	lossyAPI, loss := rtctest.NewLossyAPI(lossWindow(5))
	// Frames until the viewer's track has started, then 90 more.
	w := watch(t, serve, lossyAPI, pub, 10*time.Second)
	tick, size, ctx := w.tick, w.size, w.ctx
	for i := range 90 {
		<-tick.C
		if _, err := pub.WriteFrame(rtctest.Frame(size, i%30 == 0), 30); err != nil {
			t.Fatal(err)
		}
	}
	for loss.Recovered.Load() < loss.Dropped.Load() && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if d, r := loss.Dropped.Load(), loss.Recovered.Load(); d < 10 || r != d {
		t.Errorf("viewer lost %d packets and got %d of them again; want at least 10, all resent", d, r)
	}
}

// A publisher whose network loses packets is asked for them again by the
// relay's NACK generator (which needs NACK negotiated with the browser),
// and the copies it resends reach the viewer and the recording: every
// frame is recorded whole.
func TestRelayAsksPublisherForLost(t *testing.T) {
	rec := &fakeRec{}
	_, room, serve, _ := testRoom(t, 40800, rec)
	api, loss := rtctest.NewLossySenderAPI(lossWindow(7))
	_, pub := publishTo(t, serve, api)
	defer pub.Close()
	w := watch(t, serve, rtctest.NewAPI(), pub, 10*time.Second)
	tick, size, ctx := w.tick, w.size, w.ctx
	frames0 := room.Frames()
	const frames = 60
	for i := range frames {
		<-tick.C
		if _, err := pub.WriteFrame(rtctest.Frame(size, i%30 == 0), 30); err != nil {
			t.Fatal(err)
		}
	}
	for (loss.Recovered.Load() < loss.Dropped.Load() || room.Frames()-frames0 < frames) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if d, r := loss.Dropped.Load(), loss.Recovered.Load(); d < 10 || r != d {
		t.Errorf("the publisher lost %d packets and resent %d of them; want at least 10, all asked for and resent", d, r)
	}
	if got := room.Frames() - frames0; got < frames {
		t.Errorf("recorded %d of the %d frames sent after the start", got, frames)
	}
}

// lossWindow chooses the packets with sequence numbers k modulo 40 among
// the 40th to the 439th packet of a stream, counted from the first it is
// asked about: ten of them. A NACK generator learns of a loss from the
// packets after it, so none may be lost before the first packet it sees
// or without enough after it (the tests send more than 540).
func lossWindow(k uint16) func(seq uint16) bool {
	var first atomic.Int32 // 1 + the first sequence number asked about
	return func(seq uint16) bool {
		first.CompareAndSwap(0, int32(seq)+1)
		d := seq - uint16(first.Load()-1)
		return d >= 40 && d < 440 && seq%40 == k
	}
}

// watching is a viewer whose track has started, with what a test sends
// it by: a ticker at 30 frames a second, the size of a 2.5 Mbit/s frame,
// and a context that bounds the test.
type watching struct {
	view *rtctest.Viewer
	tick *time.Ticker
	size int
	ctx  context.Context
}

// watch connects a viewer made with api and sends pub's key frames, one a
// tick, until the viewer's track has started. The context ends after
// timeout; all of it is closed when the test ends.
func watch(t *testing.T, serve func(rtc.Role, string) *rtctest.Pipe, api *webrtc.API, pub *rtctest.Publisher, timeout time.Duration) watching {
	t.Helper()
	view, err := rtctest.View(api, serve(rtc.Viewer, "alice"), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { view.Close() })
	w := watching{view: view, tick: time.NewTicker(time.Second / 30), size: rtctest.FrameSize(2_500_000, 30)}
	t.Cleanup(w.tick.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	w.ctx = ctx
	for view.Packets.Load() == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("the viewer got nothing")
		case <-w.tick.C:
		}
		pub.WriteFrame(rtctest.Frame(w.size, true), 30)
	}
	return w
}

// testRoom starts a relay on loopback with the 100 UDP ports from portMin
// and the room of a session "s1" that records into rec. The session ends,
// the participants' Serve calls return and the relay closes when the test
// ends, or sooner through the cancel function returned.
func testRoom(t testing.TB, portMin uint16, rec rtc.Recorder) (*rtc.Relay, *rtc.Room, func(rtc.Role, string) *rtctest.Pipe, context.CancelFunc) {
	t.Helper()
	return testRoomConfig(t, rtc.Config{Loopback: true, UDPPortMin: portMin, UDPPortMax: portMin + 100}, rec)
}

// testRoomConfig is testRoom with the relay configured by cfg.
func testRoomConfig(t testing.TB, cfg rtc.Config, rec rtc.Recorder) (*rtc.Relay, *rtc.Room, func(rtc.Role, string) *rtctest.Pipe, context.CancelFunc) {
	t.Helper()
	relay, err := rtc.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close() })
	sctx, endSession := context.WithCancel(context.Background())
	room, err := relay.Room(sctx, "s1", rec, rtc.RoomOptions{Chat: true})
	if err != nil {
		endSession()
		t.Fatal(err)
	}
	serving := new(sync.WaitGroup)
	t.Cleanup(serving.Wait)
	t.Cleanup(endSession)
	return relay, room, servePipes(room, serving), endSession
}

// servePipes returns a function that connects a participant to room over
// an in-memory pipe, serving it on a goroutine that serving waits for.
func servePipes(room *rtc.Room, serving *sync.WaitGroup) func(role rtc.Role, name string) *rtctest.Pipe {
	return func(role rtc.Role, name string) *rtctest.Pipe {
		srv, cli := rtctest.NewPipe()
		serving.Go(func() { room.Serve(srv, role, name) })
		return cli
	}
}

// publishTo connects the customer through serve, waits for the room's
// hello and starts publishing with api.
func publishTo(t *testing.T, serve func(rtc.Role, string) *rtctest.Pipe, api *webrtc.API) (*rtctest.Pipe, *rtctest.Publisher) {
	t.Helper()
	conn := serve(rtc.Publisher, "customer")
	if _, err := rtctest.Message(conn, "hello", nil); err != nil {
		t.Fatal(err)
	}
	pub, err := rtctest.Publish(api, conn)
	if err != nil {
		t.Fatal(err)
	}
	return conn, pub
}

// A browser that offers H.264 and no VP8 shares its screen in H.264: a
// viewer that joined first is switched to an H.264 track, the frames are
// recorded, and the recording's IVF export decodes in ffmpeg to the
// pictures sent. A browser that offers both is answered with VP8 first.
func TestRelayH264(t *testing.T) {
	aus := recordertest.H264(t, "320x240", 30, 60, 30, "baseline")
	dir := t.TempDir()
	k := recordertest.NewKeys(t)
	path := filepath.Join(dir, "share.sgrec")
	w, err := recorder.Create(path, recordertest.Config(k, recordertest.NewClock(time.Now())))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	relay, room, serve, endSession := testRoom(t, 40400, w)

	view, err := rtctest.View(rtctest.NewAPI(), serve(rtc.Viewer, "alice"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer view.Close()
	pubConn := serve(rtc.Publisher, "customer")
	if _, err := rtctest.Message(pubConn, "hello", nil); err != nil {
		t.Fatal(err)
	}
	pub, err := rtctest.PublishH264(rtctest.NewH264API(), pubConn)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()

	tick := time.NewTicker(time.Second / 30)
	defer tick.Stop()
	for _, au := range aus {
		<-tick.C
		if err := pub.WriteSample(au, time.Second/30); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for room.Frames() < int64(len(aus)) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if got := view.MimeType(); got != webrtc.MimeTypeH264 || view.Packets.Load() == 0 {
		t.Errorf("viewer got %d packets of %q, want H.264", view.Packets.Load(), got)
	}
	endSession()
	relay.Close() // waits for the room and its recording goroutine
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %d of %d frames, %d packets dropped from the recording", room.Frames(), len(aus), room.RecordDropped())

	r, err := recorder.OpenFile(path, k.Identity)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := filepath.Join(dir, "share.ivf")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := recorder.ExportIVF(f, r, recorder.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	src := filepath.Join(dir, "src.h264")
	if err := os.WriteFile(src, bytes.Join(aus, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	got, want := recordertest.FrameMD5s(t, out), recordertest.FrameMD5s(t, src)
	// A recording that fell behind on a starved machine drops packets, says
	// so, and loses the pictures up to the next key frame; so does a frame
	// lost on loopback before the relay (the room assembles fewer frames
	// than were sent). Then only the order of what it kept is checked. (CI
	// runs beside other tests recorded 59 of 60 frames and decoded 30, and
	// assembled 57 of 60 with nothing dropped and decoded 30.)
	if len(got) < len(aus)-5 && room.RecordDropped() == 0 && room.Frames() >= int64(len(aus)) {
		t.Fatalf("decoded %d frames of the recording, want at least %d of %d", len(got), len(aus)-5, len(aus))
	}
	// Every picture decoded from the recording is one that was sent, in
	// order (a frame lost on the way would break the ones after it).
	i := 0
	for _, g := range got {
		for i < len(want) && want[i] != g {
			i++
		}
		if i == len(want) {
			t.Fatalf("decoded pictures are not the ones sent:\ngot  %v\nwant %v", got, want)
		}
		i++
	}
}

// A browser that offers H.264 before VP8 (Safari) is answered with VP8
// first, so that it sends VP8, which the review player shows.
func TestRelayPrefersVP8(t *testing.T) {
	_, _, serve, _ := testRoom(t, 40600, &fakeRec{})
	_, pub := publishTo(t, serve, rtctest.NewH264FirstAPI())
	defer pub.Close()
	offer, answer := pub.PC.LocalDescription().SDP, pub.PC.RemoteDescription().SDP
	ptOf := func(sdp, mime string) string {
		for line := range strings.Lines(sdp) {
			if pt, rest, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "a=rtpmap:"), " "); ok && strings.HasPrefix(rest, mime+"/") {
				return pt
			}
		}
		return ""
	}
	firstPT := func(sdp string) string {
		for line := range strings.Lines(sdp) {
			if f := strings.Fields(line); len(f) > 3 && f[0] == "m=video" {
				return f[3]
			}
		}
		return ""
	}
	if firstPT(offer) != ptOf(offer, "H264") {
		t.Fatalf("the offer does not put H.264 first:\n%s", offer)
	}
	if got, want := firstPT(answer), ptOf(answer, "VP8"); got == "" || got != want {
		t.Errorf("answer's first payload type %q, want VP8's %q:\n%s", got, want, answer)
	}
	if ptOf(answer, "H264") == "" {
		t.Errorf("answer leaves out H.264:\n%s", answer)
	}
	// The reordering keeps the feedback offered (pion answers with what a
	// preference and its media engine have in common): NACK, keyframe
	// requests and congestion control, which the browser needs.
	offered, answered := ptOf(offer, "VP8"), ptOf(answer, "VP8")
	n := 0
	for line := range strings.Lines(offer) {
		fb, ok := strings.CutPrefix(strings.TrimSpace(line), "a=rtcp-fb:"+offered+" ")
		if !ok {
			continue
		}
		n++
		if !strings.Contains(answer, "a=rtcp-fb:"+answered+" "+fb+"\r\n") {
			t.Errorf("answer has no %q feedback for VP8:\n%s", fb, answer)
		}
	}
	if n < 3 {
		t.Fatalf("the offer has %d feedback lines for VP8, want nack, nack pli and transport-cc:\n%s", n, offer)
	}
}

// A publisher that trickles its candidates, as the pages do (an offer
// without any, then one "candidate" message each), shares its screen;
// candidates the relay cannot use, or too many, are refused with a
// reason, and the share goes on.
func TestRelayTrickle(t *testing.T) {
	_, _, serve, _ := testRoom(t, 43500, &fakeRec{})
	conn := serve(rtc.Publisher, "customer")
	if _, err := rtctest.Message(conn, "hello", nil); err != nil {
		t.Fatal(err)
	}
	var errs []string
	var mu sync.Mutex
	pub, err := rtctest.PublishTrickle(rtctest.NewAPI(), conn)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	w := watch(t, serve, rtctest.NewAPI(), pub, 10*time.Second)
	// tenFrames sends ten frames (90 packets) and checks they arrive.
	tenFrames := func(when string) {
		before := w.view.Packets.Load()
		for i := range 10 {
			<-w.tick.C
			pub.WriteFrame(rtctest.Frame(w.size, i == 0), 30)
		}
		for w.view.Packets.Load() < before+90 && w.ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		if got := w.view.Packets.Load() - before; got < 90 {
			t.Errorf("%s the viewer got %d packets of 10 frames", when, got)
		}
	}
	tenFrames("trickled:")

	// Bad candidates and too many: a reason each, and the share goes on.
	collect := make(chan struct{})
	go func() {
		defer close(collect)
		for {
			var m rtc.Message
			if conn.ReadJSON(&m) != nil {
				return
			}
			if m.Type == "error" {
				mu.Lock()
				errs = append(errs, m.Text)
				mu.Unlock()
			}
		}
	}()
	bad := "candidate:1 1 udp 2130706431 not-an-address 9 typ host"
	conn.WriteJSON(rtc.Message{Type: "candidate", Candidate: &webrtc.ICECandidateInit{Candidate: bad}})
	for i := range 70 {
		c := fmt.Sprintf("candidate:%d 1 udp 2130706431 127.0.0.1 %d typ host", 100+i, 9+i)
		conn.WriteJSON(rtc.Message{Type: "candidate", Candidate: &webrtc.ICECandidateInit{Candidate: c}})
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n, text := len(errs), strings.Join(errs, "; ")
		mu.Unlock()
		if strings.Contains(text, "bad candidate") && strings.Contains(text, "more than 64 candidates") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("errors after bad and surplus candidates: %d: %s", n, text)
		}
		time.Sleep(10 * time.Millisecond)
	}
	tenFrames("after the refused candidates")
	conn.Close()
	<-collect
}
