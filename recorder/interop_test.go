package recorder_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zeebo/blake3"
	"golang.org/x/crypto/chacha20poly1305"

	"supportgate/internal/realpeer"
	"supportgate/recorder"
	"supportgate/recorder/recordertest"
)

func openSample(t *testing.T, k recordertest.Keys, path string) *recorder.Reader {
	t.Helper()
	r, err := recorder.OpenFile(path, k.Identity)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// runInPTY runs a shell command under script(1), which gives it the
// terminal that asciinema insists on.
func runInPTY(t *testing.T, command string) string {
	t.Helper()
	script := realpeer.Require(t, "script")
	cmd := exec.Command(script, "-qec", command, "/dev/null")
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", command, err, out)
	}
	return string(out)
}

func TestAsciinemaPlaysExport(t *testing.T) {
	asciinema := realpeer.Require(t, "asciinema")
	k := recordertest.NewKeys(t)
	path := writeSample(t, k, nil)
	cast := filepath.Join(t.TempDir(), "out.cast")
	f, err := os.Create(cast)
	if err != nil {
		t.Fatal(err)
	}
	if err := recorder.ExportAsciicast(f, openSample(t, k, path), recorder.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out := runInPTY(t, asciinema+" cat "+cast)
	if !strings.Contains(out, "line xxxxxxxxxxxxxxxxxxxxxxxxxxxxx") {
		t.Errorf("asciinema cat output lacks the recorded text:\n%q", out)
	}
	out = runInPTY(t, asciinema+" play -s 100 -i 0.01 "+cast)
	if !strings.Contains(out, "line xxxxxxxxxxxxxxxxxxxxxxxxxxxxx") {
		t.Errorf("asciinema play output lacks the recorded text:\n%q", out)
	}
}

// TestAsciinemaPlaysChannelExport exports each terminal channel of the
// golden recording, which has three, and has asciinema play each export:
// it shows that channel's text and not the others'.
func TestAsciinemaPlaysChannelExport(t *testing.T) {
	asciinema := realpeer.Require(t, "asciinema")
	b, err := os.ReadFile("testdata/golden.sgrec")
	if err != nil {
		t.Fatal(err)
	}
	k := goldenKeys(t)
	for _, tt := range []struct {
		ch         *int
		want, not  string
		warnedLeft string
	}{
		{nil, "done", "one$", "left out channels 1, 2"}, // channel 0 has the first resize
		{ptr(1), "one$ exit", "done", "left out channels 0, 2"},
		{ptr(2), "sum ok", "one$", "left out channels 0, 1"},
	} {
		r, err := recorder.Open(bytes.NewReader(b), int64(len(b)), k.Identity)
		if err != nil {
			t.Fatal(err)
		}
		cast := filepath.Join(t.TempDir(), "out.cast")
		f, err := os.Create(cast)
		if err != nil {
			t.Fatal(err)
		}
		var warned string
		opt := recorder.ExportOptions{Channel: tt.ch, Warn: func(m string) { warned += m }}
		if err := recorder.ExportAsciicast(f, r, opt); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if !strings.Contains(warned, tt.warnedLeft) {
			t.Errorf("channel %v: warned %q, want %q", tt.ch, warned, tt.warnedLeft)
		}
		out := runInPTY(t, asciinema+" cat "+cast)
		if !strings.Contains(out, tt.want) || strings.Contains(out, tt.not) {
			t.Errorf("asciinema cat of channel %v: want %q and not %q:\n%q", tt.ch, tt.want, tt.not, out)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// ivfFrame is one frame of an IVF file.
type ivfFrame struct {
	pts  uint64
	data []byte
}

func parseIVF(t *testing.T, b []byte) (rate, scale uint32, frames []ivfFrame) {
	t.Helper()
	if len(b) < 32 || string(b[:4]) != "DKIF" {
		t.Fatal("not an IVF file")
	}
	rate, scale = binary.LittleEndian.Uint32(b[16:]), binary.LittleEndian.Uint32(b[20:])
	for off := int(binary.LittleEndian.Uint16(b[6:])); off+12 <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[off:]))
		frames = append(frames, ivfFrame{binary.LittleEndian.Uint64(b[off+4:]), b[off+12 : off+12+n]})
		off += 12 + n
	}
	return rate, scale, frames
}

func TestFFmpegDecodesIVFExport(t *testing.T) {
	ffmpeg := realpeer.Require(t, "ffmpeg")
	dir := t.TempDir()
	src := filepath.Join(dir, "src.ivf")
	gen := exec.Command(ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=10",
		"-t", "2", "-c:v", "libvpx", "-f", "ivf", src)
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("generating VP8: %v\n%s", err, out)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	rate, scale, frames := parseIVF(t, b)
	if len(frames) < 10 {
		t.Fatalf("ffmpeg produced %d frames", len(frames))
	}

	k := recordertest.NewKeys(t)
	clk := recordertest.NewClock(t0)
	path := filepath.Join(dir, "media.sgrec")
	w, err := recorder.Create(path, recordertest.Config(k, clk))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		ts := time.Duration(f.pts) * time.Second * time.Duration(scale) / time.Duration(rate)
		clk.Advance(100 * time.Millisecond)
		if err := w.Media("vp8", ts, f.data, f.data[0]&1 == 0); err != nil {
			t.Fatal(err)
		}
		w.Output([]byte("frame\r\n")) // interleaved terminal records
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	out := exportIVF(t, k, path, recorder.ExportOptions{})

	got, want := strings.Join(recordertest.FrameMD5s(t, out), " "), strings.Join(recordertest.FrameMD5s(t, src), " ")
	if got != want {
		t.Errorf("decoded frames differ:\ngot  %s\nwant %s", got, want)
	}
	if n := len(strings.Fields(got)); n != len(frames) {
		t.Errorf("decoded frames: got %d, want %d", n, len(frames))
	}
}

// TestAgeUnwrapsDataKey follows FORMAT.md: extract the armored age file
// from the header, decrypt it with `age -d -i`, and use the key to open
// record 1 with ChaCha20-Poly1305.
func TestAgeUnwrapsDataKey(t *testing.T) {
	ageBin := realpeer.Require(t, "age")
	keygen := realpeer.Require(t, "age-keygen")
	awk := realpeer.Require(t, "awk")
	dir := t.TempDir()
	idFile := filepath.Join(dir, "identity.txt")
	if out, err := exec.Command(keygen, "-o", idFile).CombinedOutput(); err != nil {
		t.Fatalf("age-keygen: %v\n%s", err, out)
	}
	idText, _ := os.ReadFile(idFile)
	var secret string
	for _, l := range strings.Split(string(idText), "\n") {
		if strings.HasPrefix(l, "AGE-SECRET-KEY-") {
			secret = l
		}
	}
	k := recordertest.FixedKeys(t, "age-interop", secret)
	path := writeSample(t, k, nil)

	sh := awk + ` '/^-----BEGIN AGE ENCRYPTED FILE-----$/{p=1} p{print} /^-----END AGE ENCRYPTED FILE-----$/{exit}' ` +
		path + " | " + ageBin + " -d -i " + idFile
	key, err := exec.Command("sh", "-c", sh).Output()
	if err != nil {
		t.Fatalf("age -d: %v", err)
	}
	if len(key) != 32 {
		t.Fatalf("data key: got %d bytes, want 32", len(key))
	}

	b, _ := os.ReadFile(path)
	hdrLen, frames := parseFile(t, b)
	h0 := blake3.Sum256(append([]byte("supportgate-recording-v2 chain\x00"), b[:hdrLen]...))
	f := b[frames[0].off:frames[0].end]
	ad := append(append([]byte(nil), f[:21]...), h0[:16]...)
	nonce := make([]byte, 12)
	copy(nonce[4:], f[4:12])
	aead, _ := chacha20poly1305.New(key)
	pt, err := aead.Open(nil, nonce, f[21:len(f)-32], ad)
	if err != nil {
		t.Fatalf("opening record 1 with the unwrapped key: %v", err)
	}
	if recorder.Type(pt[0]) != recorder.TypeEvent || !bytes.Contains(pt, []byte("consent.approved")) {
		t.Errorf("record 1: got %q", pt)
	}
}

// An H.264 screen share's recording exports as IVF with the H264 fourcc,
// which ffmpeg decodes to the same pictures as the stream it came from.
func TestFFmpegDecodesH264IVFExport(t *testing.T) {
	aus := recordertest.H264(t, "320x240", 10, 30, 10, "baseline")
	dir := t.TempDir()
	src := filepath.Join(dir, "src.h264")
	if err := os.WriteFile(src, bytes.Join(aus, nil), 0o600); err != nil {
		t.Fatal(err)
	}

	k := recordertest.NewKeys(t)
	clk := recordertest.NewClock(t0)
	path := filepath.Join(dir, "media.sgrec")
	w, err := recorder.Create(path, recordertest.Config(k, clk))
	if err != nil {
		t.Fatal(err)
	}
	// A VP8 delta frame before the first key frame is left out, as are
	// H.264 frames before the first IDR.
	if err := w.Media("vp8", 0, []byte{0x01, 0, 0}, false); err != nil {
		t.Fatal(err)
	}
	for i, au := range aus {
		clk.Advance(100 * time.Millisecond)
		if err := w.Media("h264", time.Duration(i)*100*time.Millisecond, au, recordertest.HasIDR(au)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	var warned []string
	out := exportIVF(t, k, path, recorder.ExportOptions{Warn: func(m string) { warned = append(warned, m) }})
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(b[8:12]) != "H264" || binary.LittleEndian.Uint16(b[12:]) != 320 || binary.LittleEndian.Uint16(b[14:]) != 240 {
		t.Errorf("IVF header: fourcc %q, %dx%d; want H264 320x240", b[8:12], binary.LittleEndian.Uint16(b[12:]), binary.LittleEndian.Uint16(b[14:]))
	}
	if len(warned) != 0 {
		t.Errorf("warnings: %q", warned)
	}
	got, want := strings.Join(recordertest.FrameMD5s(t, out), " "), strings.Join(recordertest.FrameMD5s(t, src), " ")
	if got != want {
		t.Errorf("decoded frames differ:\ngot  %s\nwant %s", got, want)
	}
	if n := len(strings.Fields(got)); n != len(aus) {
		t.Errorf("decoded frames: got %d, want %d", n, len(aus))
	}
}

// exportIVF exports the recording at path as IVF next to it and returns
// the IVF file's path.
func exportIVF(t *testing.T, k recordertest.Keys, path string, opt recorder.ExportOptions) string {
	t.Helper()
	out := strings.TrimSuffix(path, ".sgrec") + ".ivf"
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := recorder.ExportIVF(f, openSample(t, k, path), opt); err != nil {
		t.Fatal(err)
	}
	return out
}
