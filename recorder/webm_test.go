package recorder_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"supportgate/internal/realpeer"
	"supportgate/recorder"
	"supportgate/recorder/recordertest"
)

// fixtureIVF holds 3 s of VP8 at 10 frames a second, 320x240, with a key
// frame every second (frames 0, 10, 20), made by
//
//	ffmpeg -f lavfi -i testsrc=size=320x240:rate=10 -t 3 -c:v libvpx -g 10 -f ivf vp8-320x240.ivf
//
// (ffmpeg 5.1, libvpx 1.12). TestFFmpegDecodesWebMExport makes fresh VP8
// with ffmpeg as well, so the fixture does not hide a change in libvpx.
const fixtureIVF = "testdata/vp8-320x240.ivf"

// mediaFrame is a VP8 frame with its media time.
type mediaFrame struct {
	ts   time.Duration
	data []byte
	key  bool
}

// ivfFrames parses IVF bytes into frames with their times.
func ivfFrames(t testing.TB, b []byte) []mediaFrame {
	t.Helper()
	if len(b) < 32 || string(b[:4]) != "DKIF" {
		t.Fatal("not an IVF file")
	}
	rate, scale := binary.LittleEndian.Uint32(b[16:]), binary.LittleEndian.Uint32(b[20:])
	var out []mediaFrame
	for off := int(binary.LittleEndian.Uint16(b[6:])); off+12 <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[off:]))
		pts := binary.LittleEndian.Uint64(b[off+4:])
		if off+12+n > len(b) {
			t.Fatal("IVF frame overruns the file")
		}
		d := b[off+12 : off+12+n]
		out = append(out, mediaFrame{time.Duration(pts) * time.Second * time.Duration(scale) / time.Duration(rate), d, d[0]&1 == 0})
		off += 12 + n
	}
	return out
}

func fixtureFrames(t testing.TB) []mediaFrame {
	t.Helper()
	b, err := os.ReadFile(fixtureIVF)
	if err != nil {
		t.Fatal(err)
	}
	return ivfFrames(t, b)
}

// vp8 returns a frame with a valid VP8 header and n bytes of payload:
// a w x h key frame, or a delta frame.
func vp8(key bool, w, h, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + n)
	}
	return vp8Frame(key, w, h, p)
}

// vp8Frame puts a VP8 frame header (RFC 6386, section 9.1) before payload,
// which it gives as the first partition.
func vp8Frame(key bool, w, h int, payload []byte) []byte {
	tag := uint32(len(payload))<<5 | 1<<4 // shown
	if !key {
		tag |= 1
	}
	b := []byte{byte(tag), byte(tag >> 8), byte(tag >> 16)}
	if key {
		b = append(b, 0x9d, 0x01, 0x2a, byte(w), byte(w>>8), byte(h), byte(h>>8))
	}
	return append(b, payload...)
}

func muxWebM(t testing.TB, m *recorder.WebMMuxer) *webmFile {
	t.Helper()
	var buf bytes.Buffer
	n, err := m.WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Errorf("WriteTo: returned %d, wrote %d bytes", n, buf.Len())
	}
	f, err := parseWebM(buf.Bytes())
	if err != nil {
		t.Fatalf("output: %v", err)
	}
	return f
}

func TestWebMMuxerFixture(t *testing.T) {
	frames := fixtureFrames(t)
	m := recorder.NewWebMMuxer(0, 0)
	for _, fr := range frames {
		if err := m.Add(fr.ts+7*time.Second, fr.data, fr.key); err != nil {
			t.Fatal(err)
		}
	}
	if o, ok := m.Origin(); !ok || o != 7*time.Second {
		t.Errorf("origin: got %v %v, want 7s", o, ok)
	}
	f := muxWebM(t, m)
	if f.docType != "webm" || f.docVersion != 4 || f.docReadVer != 2 {
		t.Errorf("doc type: got %q %d/%d, want webm 4/2", f.docType, f.docVersion, f.docReadVer)
	}
	if f.timestampScale != 1e6 || f.muxingApp != "supportgate" || f.writingApp != "supportgate" {
		t.Errorf("info: got scale %d, apps %q %q", f.timestampScale, f.muxingApp, f.writingApp)
	}
	if f.codec != "V_VP8" || f.width != 320 || f.height != 240 {
		t.Errorf("track: got %s %dx%d, want V_VP8 320x240", f.codec, f.width, f.height)
	}
	if f.duration != 3000 {
		t.Errorf("duration: got %v ms, want 3000", f.duration)
	}
	if len(f.blocks) != len(frames) {
		t.Fatalf("blocks: got %d, want %d", len(f.blocks), len(frames))
	}
	for i, b := range f.blocks {
		if b.t != int64(i*100) || b.key != (i%10 == 0) || b.invisible || !bytes.Equal(b.data, frames[i].data) {
			t.Errorf("block %d: got t=%d key=%v invisible=%v %d bytes, want t=%d key=%v the frame's %d bytes",
				i, b.t, b.key, b.invisible, len(b.data), i*100, i%10 == 0, len(frames[i].data))
		}
	}
	if want := []int64{0, 1000, 2000}; !slicesEqual(f.clusters, want) || !slicesEqual(f.cues, want) {
		t.Errorf("clusters %v, cues %v: want both %v", f.clusters, f.cues, want)
	}
	if s := m.Stats(); s != (recorder.WebMStats{Frames: 30, Keyframes: 3}) {
		t.Errorf("stats: got %+v", s)
	}
}

func slicesEqual(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestWebMMuxerTimestamps(t *testing.T) {
	ms := time.Millisecond
	key, delta := true, false
	type in struct {
		ts  time.Duration
		key bool
	}
	tests := []struct {
		name     string
		frames   []in
		times    []int64
		clusters []int64
		cues     []int64
		duration float64
		stats    recorder.WebMStats
	}{
		{
			name:     "relative to the first key frame, leading deltas left out",
			frames:   []in{{5 * time.Second, delta}, {5100 * ms, delta}, {5200 * ms, key}, {5250 * ms, delta}, {5300 * ms, delta}},
			times:    []int64{0, 50, 100},
			clusters: []int64{0}, cues: []int64{0}, duration: 150,
			stats: recorder.WebMStats{Frames: 3, Keyframes: 1, Leading: 2},
		},
		{
			name:     "stamps that do not increase move 1 ms past the last",
			frames:   []in{{0, key}, {100 * ms, delta}, {100 * ms, delta}, {50 * ms, delta}, {100500 * time.Microsecond, delta}, {200 * ms, delta}},
			times:    []int64{0, 100, 101, 102, 103, 200},
			clusters: []int64{0}, cues: []int64{0}, duration: 297,
			stats: recorder.WebMStats{Frames: 6, Keyframes: 1},
		},
		{
			name:     "earlier than the first frame",
			frames:   []in{{time.Second, key}, {-time.Hour, delta}, {math.MinInt64, delta}},
			times:    []int64{0, 1, 2},
			clusters: []int64{0}, cues: []int64{0}, duration: 3,
			stats: recorder.WebMStats{Frames: 3, Keyframes: 1},
		},
		{
			name:     "a cluster at least every 5 s, cues only at key frames",
			frames:   []in{{0, key}, {2 * time.Second, delta}, {4 * time.Second, delta}, {6 * time.Second, delta}, {8 * time.Second, delta}, {10 * time.Second, delta}, {11 * time.Second, key}},
			times:    []int64{0, 2000, 4000, 6000, 8000, 10000, 11000},
			clusters: []int64{0, 6000, 11000}, cues: []int64{0, 11000}, duration: 12000,
			stats: recorder.WebMStats{Frames: 7, Keyframes: 2},
		},
		{
			name:     "a gap longer than an int16 of milliseconds",
			frames:   []in{{0, key}, {40 * time.Second, delta}, {40*time.Second + 100*ms, delta}},
			times:    []int64{0, 40000, 40100},
			clusters: []int64{0, 40000}, cues: []int64{0}, duration: 40200,
			stats: recorder.WebMStats{Frames: 3, Keyframes: 1},
		},
		{
			name:     "the whole int64 range",
			frames:   []in{{math.MinInt64, key}, {math.MaxInt64, delta}},
			times:    []int64{0, 18446744073709}, // (2^64-1) ns in ms
			clusters: []int64{0, 18446744073709}, cues: []int64{0}, duration: 2 * 18446744073709,
			stats: recorder.WebMStats{Frames: 2, Keyframes: 1},
		},
		{
			name:     "one frame",
			frames:   []in{{time.Minute, key}},
			times:    []int64{0},
			clusters: []int64{0}, cues: []int64{0}, duration: 1,
			stats: recorder.WebMStats{Frames: 1, Keyframes: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := recorder.NewWebMMuxer(0, 0)
			for _, fr := range tt.frames {
				if err := m.Add(fr.ts, vp8(fr.key, 64, 48, 5), fr.key); err != nil {
					t.Fatal(err)
				}
			}
			f := muxWebM(t, m)
			var times []int64
			for _, b := range f.blocks {
				times = append(times, b.t)
			}
			if !slicesEqual(times, tt.times) {
				t.Errorf("times: got %v, want %v", times, tt.times)
			}
			if !slicesEqual(f.clusters, tt.clusters) {
				t.Errorf("clusters: got %v, want %v", f.clusters, tt.clusters)
			}
			if !slicesEqual(f.cues, tt.cues) {
				t.Errorf("cues: got %v, want %v", f.cues, tt.cues)
			}
			if f.duration != tt.duration {
				t.Errorf("duration: got %v, want %v", f.duration, tt.duration)
			}
			if s := m.Stats(); s != tt.stats {
				t.Errorf("stats: got %+v, want %+v", s, tt.stats)
			}
		})
	}
}

func TestWebMMuxerSize(t *testing.T) {
	tests := []struct {
		name         string
		w, h         int
		wantW, wantH int
	}{
		{name: "from the first key frame", wantW: 64, wantH: 48},
		{name: "given", w: 1280, h: 720, wantW: 1280, wantH: 720},
		{name: "half given", w: 1280, wantW: 64, wantH: 48},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := recorder.NewWebMMuxer(tt.w, tt.h)
			m.Add(0, vp8(false, 0, 0, 4), false)
			m.Add(time.Millisecond, vp8(true, 64, 48, 4), true)
			m.Add(time.Second, vp8(true, 800, 600, 4), true) // a new share of another size
			f := muxWebM(t, m)
			if f.width != tt.wantW || f.height != tt.wantH {
				t.Errorf("size: got %dx%d, want %dx%d", f.width, f.height, tt.wantW, tt.wantH)
			}
		})
	}
}

func TestWebMMuxerRejects(t *testing.T) {
	keyNoCode := vp8(true, 64, 48, 4)
	keyNoCode[4] = 0
	zero := vp8(true, 0, 48, 4)
	version := vp8(false, 0, 0, 4)
	version[0] |= 7 << 1
	overrun := vp8(false, 0, 0, 4)
	overrun = overrun[:len(overrun)-1]
	tests := []struct {
		name  string
		frame []byte
		key   bool
		want  string
	}{
		{"empty", nil, false, "too short"},
		{"two bytes", []byte{1, 0}, false, "too short"},
		{"key frame without start code", keyNoCode, true, "start code"},
		{"key frame of no pixels", zero, true, "0x48 pixels"},
		{"unknown version", version, false, "version 7"},
		{"partition overrun", overrun, false, "overruns"},
		{"short key frame", vp8(true, 64, 48, 4)[:8], true, "too short for a VP8 key frame"},
		{"delta marked key", vp8(false, 0, 0, 4), true, "marked as a key frame"},
		{"key marked delta", vp8(true, 64, 48, 4), false, "marked as a delta frame"},
		{"too large", vp8(false, 0, 0, recorder.MaxMediaFrame), false, "exceeds"},
		{"h264", []byte{0, 0, 0, 1, 0x67, 0x42, 0, 0x1f, 0xe9, 0x02}, true, "start code"},
	}
	good := []mediaFrame{
		{0, vp8(true, 64, 48, 6), true},
		{100 * time.Millisecond, vp8(false, 0, 0, 6), false},
		{200 * time.Millisecond, vp8(false, 0, 0, 6), false},
	}
	var want bytes.Buffer
	ref := recorder.NewWebMMuxer(0, 0)
	for _, g := range good {
		ref.Add(g.ts, g.data, g.key)
	}
	ref.WriteTo(&want)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The bad frame before the first key frame, and between two delta frames.
			for _, at := range []int{0, 2} {
				m := recorder.NewWebMMuxer(0, 0)
				for i, g := range good {
					if i == at {
						err := m.Add(g.ts, tt.frame, tt.key)
						if err == nil || !strings.Contains(err.Error(), tt.want) {
							t.Errorf("Add: got %v, want an error containing %q", err, tt.want)
						}
					}
					if err := m.Add(g.ts, g.data, g.key); err != nil {
						t.Fatal(err)
					}
				}
				if s := m.Stats(); s != (recorder.WebMStats{Frames: 3, Keyframes: 1, Rejected: 1}) {
					t.Errorf("stats: got %+v", s)
				}
				var got bytes.Buffer
				if _, err := m.WriteTo(&got); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got.Bytes(), want.Bytes()) {
					t.Errorf("the rejected frame at %d changed the output", at)
				}
			}
		})
	}
}

func TestWebMMuxerNoKeyFrame(t *testing.T) {
	m := recorder.NewWebMMuxer(0, 0)
	if _, err := m.WriteTo(&bytes.Buffer{}); err == nil {
		t.Error("WriteTo with no frames: got no error")
	}
	m.Add(0, vp8(false, 0, 0, 4), false)
	m.Add(0, []byte("junk"), true)
	var buf bytes.Buffer
	if _, err := m.WriteTo(&buf); err == nil || !strings.Contains(err.Error(), "no VP8 key frame") || buf.Len() != 0 {
		t.Errorf("WriteTo with only a delta frame: got %v and %d bytes", err, buf.Len())
	}
	if o, ok := m.Origin(); ok {
		t.Errorf("origin: got %v, want none", o)
	}
}

// writeMediaRecording writes a recording of VP8 frames through the real
// Writer, each frame 100 ms after the previous on the clock, with terminal
// output between them; extra, if set, writes more records after frame i.
func writeMediaRecording(t testing.TB, k recordertest.Keys, frames []mediaFrame, extra func(w *recorder.Writer, i int)) string {
	t.Helper()
	clk := recordertest.NewClock(t0)
	path := filepath.Join(t.TempDir(), "media.sgrec")
	w, err := recorder.Create(path, recordertest.Config(k, clk))
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range frames {
		clk.Advance(100 * time.Millisecond)
		if err := w.Media("vp8", f.ts, f.data, f.key); err != nil {
			t.Fatal(err)
		}
		w.Output([]byte("frame\r\n"))
		if extra != nil {
			extra(w, i)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func exportWebM(t testing.TB, k recordertest.Keys, path string) (out []byte, warnings []string, err error) {
	t.Helper()
	var buf bytes.Buffer
	r, oerr := recorder.OpenFile(path, k.Identity)
	if oerr != nil {
		t.Fatal(oerr)
	}
	defer r.Close()
	var progress []int64
	err = recorder.ExportWebM(&buf, r, recorder.ExportOptions{
		Warn:     func(s string) { warnings = append(warnings, s) },
		Progress: func(done, total int64) { progress = append(progress, done) },
	})
	for i := 1; i < len(progress); i++ {
		if progress[i] < progress[i-1] || progress[i] > r.Size() {
			t.Errorf("progress went %d, %d of %d", progress[i-1], progress[i], r.Size())
			break
		}
	}
	return buf.Bytes(), warnings, err
}

func TestExportWebM(t *testing.T) {
	frames := fixtureFrames(t)
	k := recordertest.NewKeys(t)
	var in []mediaFrame
	in = append(in, mediaFrame{900 * time.Millisecond, frames[5].data, false}) // before any key frame
	for _, f := range frames {
		in = append(in, mediaFrame{f.ts + time.Second, f.data, f.key})
	}
	path := writeMediaRecording(t, k, in, func(w *recorder.Writer, i int) {
		switch i {
		case 3:
			w.Media("vp8", 1300*time.Millisecond, []byte("garbage"), false)
		case 4:
			w.Media("h264", 1400*time.Millisecond, []byte{0, 0, 0, 1, 0x65}, true)
		}
	})
	got, warnings, err := exportWebM(t, k, path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"left out 1 VP8 delta frames before the first key frame",
		"left out 1 malformed VP8 frames (first: frame at 1.3s: VP8 first partition of",
		`left out 1 "h264" frames: webm export supports vp8 only`,
	}
	if len(warnings) != len(want) {
		t.Fatalf("warnings: got %q, want %q", warnings, want)
	}
	for i := range want {
		if !strings.HasPrefix(warnings[i], want[i]) {
			t.Errorf("warning %d: got %q, want %q", i, warnings[i], want[i])
		}
	}

	// The two-pass export writes the same bytes as the muxer fed directly.
	m := recorder.NewWebMMuxer(0, 0)
	for _, f := range frames {
		if err := m.Add(f.ts, f.data, f.key); err != nil {
			t.Fatal(err)
		}
	}
	var direct bytes.Buffer
	m.WriteTo(&direct)
	if !bytes.Equal(got, direct.Bytes()) {
		t.Errorf("export: %d bytes, differing from the muxer's %d", len(got), direct.Len())
	}
	f, err := parseWebM(got)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.blocks) != len(frames) || f.blocks[0].t != 0 || f.blocks[29].t != 2900 {
		t.Errorf("blocks: got %d, want %d from 0 to 2900 ms", len(f.blocks), len(frames))
	}
}

func TestExportWebMErrors(t *testing.T) {
	k := recordertest.NewKeys(t)
	frames := fixtureFrames(t)

	t.Run("no media", func(t *testing.T) {
		_, _, err := exportWebM(t, k, writeMediaRecording(t, k, nil, nil))
		if err == nil || err.Error() != "recorder: no VP8 key frame in the recording" {
			t.Errorf("got %v", err)
		}
	})
	t.Run("a malformed frame only", func(t *testing.T) {
		_, _, err := exportWebM(t, k, writeSample(t, k, nil))
		want := "recorder: no VP8 key frame in the recording (left out 1 malformed VP8 frames (first: frame at 2s: too short for a VP8 key frame: 6 bytes))"
		if err == nil || err.Error() != want {
			t.Errorf("got %v, want %s", err, want)
		}
	})
	t.Run("h264 only", func(t *testing.T) {
		clk := recordertest.NewClock(t0)
		path := filepath.Join(t.TempDir(), "h264.sgrec")
		w, _ := recorder.Create(path, recordertest.Config(k, clk))
		for i := range 5 {
			w.Media("h264", time.Duration(i)*100*time.Millisecond, []byte{0, 0, 0, 1, 0x65, byte(i)}, i == 0)
		}
		w.Close()
		_, _, err := exportWebM(t, k, path)
		if err == nil || !strings.Contains(err.Error(), `webm export supports vp8 only; the recording's video is "h264" (5 frames)`) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("no key frame", func(t *testing.T) {
		path := writeMediaRecording(t, k, frames[1:10], nil)
		_, _, err := exportWebM(t, k, path)
		if err == nil || !strings.Contains(err.Error(), "no VP8 key frame in the recording (left out 9 VP8 delta frames before the first key frame)") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("cut short", func(t *testing.T) {
		path := writeMediaRecording(t, k, frames, nil)
		b, _ := os.ReadFile(path)
		if err := os.WriteFile(path, b[:len(b)/2], 0o600); err != nil {
			t.Fatal(err)
		}
		out, _, err := exportWebM(t, k, path)
		if !errors.Is(err, recorder.ErrCutShort) {
			t.Fatalf("got %v, want cut short", err)
		}
		f, perr := parseWebM(out)
		if perr != nil {
			t.Fatal(perr)
		}
		if len(f.blocks) == 0 || len(f.blocks) >= len(frames) {
			t.Errorf("exported %d of %d frames from half the file", len(f.blocks), len(frames))
		}
	})
	t.Run("tampered", func(t *testing.T) {
		path := writeMediaRecording(t, k, frames, nil)
		b, _ := os.ReadFile(path)
		_, spans := parseFile(t, b)
		b[spans[30].off+30] ^= 1
		os.WriteFile(path, b, 0o600)
		out, _, err := exportWebM(t, k, path)
		var te *recorder.TamperError
		if !errors.As(err, &te) || te.Record != 31 {
			t.Fatalf("got %v, want record 31 tampered", err)
		}
		f, perr := parseWebM(out)
		if perr != nil {
			t.Fatal(perr)
		}
		if len(f.blocks) != 15 { // records 1..30 are 15 frames and their output
			t.Errorf("exported %d frames before the tampered record, want 15", len(f.blocks))
		}
	})
}

// FuzzWebMMuxer feeds arbitrary frames and timestamps to a WebMMuxer: Add
// must refuse or take each without panicking, and the file must parse as
// EBML of the right shape holding exactly the frames taken.
//
// The input is a sequence of chunks: a flags byte (bit 0: marked key; bit
// 1: give the payload a valid VP8 header; bit 2: the time step is in
// seconds rather than microseconds), an int32 time step, a length byte and
// that many payload bytes.
func FuzzWebMMuxer(f *testing.F) {
	chunk := func(flags byte, step int32, p []byte) []byte {
		b := binary.BigEndian.AppendUint32([]byte{flags}, uint32(step))
		return append(append(b, byte(len(p))), p...)
	}
	frames := fixtureFrames(f)
	var seed []byte
	for _, fr := range frames[:4] {
		var flags byte
		if fr.key {
			flags = 1
		}
		seed = append(seed, chunk(flags, 100000, fr.data[:min(len(fr.data), 64)])...)
	}
	f.Add(seed)
	f.Add(append(chunk(3, 0, []byte{1, 2, 3}), chunk(2, 33000, []byte{4})...))
	f.Add(append(chunk(3, 0, []byte{9}), chunk(6, -7, []byte{9})...))
	f.Add(append(chunk(7, math.MaxInt32, nil), chunk(6, math.MaxInt32, nil)...))
	f.Fuzz(fuzzWebMMuxer)
}

func fuzzWebMMuxer(t *testing.T, in []byte) {
	m := recorder.NewWebMMuxer(0, 0)
	var ts time.Duration
	var taken [][]byte
	for len(in) >= 6 {
		flags, step, n := in[0], int32(binary.BigEndian.Uint32(in[1:])), int(in[5])
		p := in[6:min(len(in), 6+n)]
		in = in[6+len(p):]
		key := flags&1 != 0
		if flags&2 != 0 {
			p = vp8Frame(key, 1+len(p)%300, 1+n%200, p)
		}
		if flags&4 != 0 {
			ts += time.Duration(step) * time.Second
		} else {
			ts += time.Duration(step) * time.Microsecond
		}
		before := m.Stats().Frames
		if err := m.Add(ts, p, key); err == nil && m.Stats().Frames > before {
			taken = append(taken, p)
		}
	}
	var buf bytes.Buffer
	n, err := m.WriteTo(&buf)
	if len(taken) == 0 {
		if err == nil {
			t.Fatal("WriteTo without a key frame succeeded")
		}
		return
	}
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("WriteTo: %d bytes, %v", n, err)
	}
	wf, err := parseWebM(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(wf.blocks) != len(taken) || wf.blocks[0].t != 0 {
		t.Fatalf("got %d blocks, want %d", len(wf.blocks), len(taken))
	}
	for i, b := range wf.blocks {
		if !bytes.Equal(b.data, taken[i]) {
			t.Fatalf("block %d differs from the frame given", i)
		}
	}
	if s := m.Stats(); s.Frames != len(taken) || len(wf.cues) != s.Keyframes {
		t.Fatalf("stats %+v, %d cue points", s, len(wf.cues))
	}
}

// ffprobeFlat runs ffprobe with -of flat and returns its key=value lines;
// anything on stderr fails the test.
func ffprobeFlat(t *testing.T, ffprobe string, args ...string) map[string]string {
	t.Helper()
	cmd := exec.Command(ffprobe, append([]string{"-v", "error", "-of", "flat"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffprobe %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	kv := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			kv[k] = strings.Trim(v, `"`)
		}
	}
	return kv
}

// frameMD5s decodes a video with ffmpeg and returns each frame's MD5; a
// decoding error or anything on stderr fails the test.
func frameMD5s(t *testing.T, ffmpeg string, args ...string) []string {
	t.Helper()
	cmd := exec.Command(ffmpeg, append(append([]string{"-v", "error"}, args...), "-f", "framemd5", "-")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var sums []string
	for _, l := range strings.Split(string(out), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			f := strings.Split(l, ",")
			sums = append(sums, strings.TrimSpace(f[len(f)-1]))
		}
	}
	return sums
}

// TestFFmpegDecodesWebMExport makes VP8 with ffmpeg, records it through
// the Writer, exports WebM and has ffprobe and ffmpeg read it back: codec,
// size, frame count, duration, every decoded frame equal to decoding the
// source, and seeking through the cues to a frame between key frames.
func TestFFmpegDecodesWebMExport(t *testing.T) {
	ffmpeg := realpeer.Require(t, "ffmpeg")
	ffprobe := realpeer.Require(t, "ffprobe")
	dir := t.TempDir()
	gen := func(name, size string, secs int) (string, []mediaFrame) {
		path := filepath.Join(dir, name)
		cmd := exec.Command(ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc=size="+size+":rate=10",
			"-t", strconv.Itoa(secs), "-c:v", "libvpx", "-g", "10", "-f", "ivf", path)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("generating VP8: %v\n%s", err, out)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return path, ivfFrames(t, b)
	}
	src, frames := gen("src.ivf", "320x240", 3)
	if len(frames) != 30 {
		t.Fatalf("ffmpeg made %d frames, want 30", len(frames))
	}
	k := recordertest.NewKeys(t)
	export := func(name string, frames []mediaFrame) string {
		b, warnings, err := exportWebM(t, k, writeMediaRecording(t, k, frames, nil))
		if err != nil || len(warnings) > 0 {
			t.Fatalf("export: %v %q", err, warnings)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	shifted := make([]mediaFrame, len(frames))
	for i, f := range frames {
		shifted[i] = mediaFrame{f.ts + 90*time.Second, f.data, f.key} // media time is not 0 at the start
	}
	out := export("out.webm", shifted)

	kv := ffprobeFlat(t, ffprobe, "-count_frames", "-show_streams", "-show_format", out)
	for key, want := range map[string]string{
		"streams.stream.0.codec_name":     "vp8",
		"streams.stream.0.width":          "320",
		"streams.stream.0.height":         "240",
		"streams.stream.0.nb_read_frames": "30",
		"format.nb_streams":               "1",
		"format.format_name":              "matroska,webm",
	} {
		if kv[key] != want {
			t.Errorf("ffprobe %s: got %q, want %q", key, kv[key], want)
		}
	}
	dur, err := strconv.ParseFloat(ffprobeFlat(t, ffprobe, "-show_entries", "format=duration", out)["format.duration"], 64)
	if err != nil || math.Abs(dur-3.0) > 0.1 {
		t.Errorf("duration: got %v (%v), want 3 s within a frame", dur, err)
	}

	want := frameMD5s(t, ffmpeg, "-i", src)
	got := frameMD5s(t, ffmpeg, "-i", out)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("decoded frames differ from the source's:\ngot  %v\nwant %v", got, want)
	}
	// Seeking before the input uses the cues to find the key frame at or
	// before the time, then decodes up to it: at 2.0 s a key frame, at
	// 1.5 s the sixth frame after the key frame at 1 s.
	for _, ss := range []struct {
		at    string
		frame int
	}{{"2", 20}, {"1.5", 15}, {"0.4", 4}} {
		got := frameMD5s(t, ffmpeg, "-ss", ss.at, "-i", out, "-frames:v", "1")
		if len(got) != 1 || got[0] != want[ss.frame] {
			t.Errorf("seek to %s s: got %v, want frame %d (%s)", ss.at, got, ss.frame, want[ss.frame])
		}
	}

	t.Run("a second share at another size", func(t *testing.T) {
		_, small := gen("small.ivf", "160x120", 1)
		both := append([]mediaFrame(nil), frames...)
		for _, f := range small {
			both = append(both, mediaFrame{f.ts + 5*time.Second, f.data, f.key})
		}
		out := export("two.webm", both)
		if n := len(frameMD5s(t, ffmpeg, "-i", out)); n != len(both) {
			t.Errorf("decoded %d frames, want %d", n, len(both))
		}
		kv := ffprobeFlat(t, ffprobe, "-show_streams", "-show_format", out)
		if kv["streams.stream.0.width"] != "320" {
			t.Errorf("track width: got %q, want the first share's 320", kv["streams.stream.0.width"])
		}
		if d, _ := strconv.ParseFloat(kv["format.duration"], 64); math.Abs(d-6.0) > 0.1 {
			t.Errorf("duration: got %v, want 6 s", d)
		}
	})
}

// TestExportIVFErrors: a recording with no video says it has no screen
// share (it said "no VP8 or H.264 key frame", as if frames were broken);
// one with video but no key frame says that.
func TestExportIVFErrors(t *testing.T) {
	k := recordertest.NewKeys(t)
	frames := fixtureFrames(t)
	for _, tt := range []struct {
		name, path, want string
	}{
		{"no media", writeMediaRecording(t, k, nil, nil), "recorder: no screen share in the recording: it has no video to export"},
		{"no key frame", writeMediaRecording(t, k, frames[1:10], nil), "recorder: no VP8 or H.264 key frame in the recording"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "out.ivf"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := recorder.ExportIVF(f, openSample(t, k, tt.path), recorder.ExportOptions{}); err == nil || err.Error() != tt.want {
				t.Errorf("got %v, want %s", err, tt.want)
			}
		})
	}
}
