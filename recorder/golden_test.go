package recorder_test

import (
	"bytes"
	"errors"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/cryptotest"
	"time"

	"filippo.io/age"

	"supportgate/recorder"
	"supportgate/recorder/recordertest"
	"supportgate/recorder/vt"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func goldenKeys(t testing.TB) recordertest.Keys {
	t.Helper()
	b, err := os.ReadFile("testdata/golden-identity.txt")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := age.ParseIdentities(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return recordertest.FixedKeys(t, "golden", ids[0].(*age.X25519Identity).String())
}

// writeGolden writes the golden recording deterministically: channel 0
// as before channels, two more terminal channels beside it (a shell on 1,
// a command without a terminal on 2), with card numbers split across
// writes and interleaved between channels.
func writeGolden(t *testing.T) []byte {
	cryptotest.SetGlobalRandom(t, 1)
	k := goldenKeys(t)
	clk := recordertest.NewClock(t0)
	cfg := recordertest.Config(k, clk)
	cfg.RecordInput = true
	var buf bytes.Buffer
	w, err := recorder.NewWriter(&buf, cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.Event("consent.approved", map[string]string{"scopes": "view,chat,shell"})
	w.Resize(40, 10)
	w.Output([]byte("\x1b[1;32m$\x1b[0m "))
	w.Input([]byte("echo 4111 1111 1111 1111\r"))
	clk.Advance(2 * time.Second)
	w.ResizeOn(1, 30, 8)
	w.OutputOn(1, []byte("one$ "))
	w.Output([]byte("echo 4111 1111 "))
	w.OutputOn(1, []byte("5555 5555 "))
	w.StdinOn(2, []byte("4111 1111 "))
	w.Output([]byte("1111 1111\r\n4111 1111 1111 1111\r\n"))
	w.OutputOn(1, []byte("5555 4444\r\none$ "))
	w.StdinOn(2, []byte("1111 1111\n"))
	w.OutputOn(2, []byte("sum ok\n"))
	clk.Advance(4 * time.Second)
	w.EndChannel(2)
	w.Chat("customer", "ok, go ahead")
	w.Media("vp8", 6*time.Second, []byte{0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00}, true)
	w.Forward(recorder.ForwardMeta{ID: "fw1", State: "open", Protocol: "tcp", Target: "localhost:80"})
	clk.Advance(5 * time.Second)
	w.Output([]byte("\x1b[2J\x1b[Hdone\r\n"))
	w.OutputOn(1, []byte("exit\r\n"))
	w.EndChannel(1)
	clk.Advance(time.Second)
	w.Event("session.ended", map[string]string{"reason": "revoked"})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func exportJSONL(t *testing.T, b []byte, k recordertest.Keys) []byte {
	t.Helper()
	r, err := recorder.Open(bytes.NewReader(b), int64(len(b)), k.Identity)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := recorder.ExportJSONL(&out, r, recorder.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestGolden pins the format: the writer produces the golden bytes, and the
// reader still reads them to the golden JSON lines.
func TestGolden(t *testing.T) {
	got := writeGolden(t)
	k := goldenKeys(t)
	if *update {
		_, frames := parseFile(t, got)
		cut := got[:frames[len(frames)/2].off+7]
		flipped := bytes.Clone(got)
		flipped[frames[3].off+25] ^= 1
		files := map[string][]byte{
			"golden.sgrec":          got,
			"golden.jsonl":          exportJSONL(t, got, k),
			"golden-cut.sgrec":      cut,
			"golden-tampered.sgrec": flipped,
		}
		// The old versions' recordings stay as they are; what the reader
		// makes of them may change.
		for _, v := range []string{"v1", "v2"} {
			old, err := os.ReadFile("testdata/golden-" + v + ".sgrec")
			if err != nil {
				t.Fatal(err)
			}
			files["golden-"+v+".jsonl"] = exportJSONL(t, old, k)
		}
		for name, b := range files {
			if err := os.WriteFile(filepath.Join("testdata", name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	want, err := os.ReadFile("testdata/golden.sgrec")
	if err != nil {
		t.Fatalf("%v (run go test -run TestGolden -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("writer output differs from testdata/golden.sgrec (format change? run with -update and review)")
	}
	wantJSON, _ := os.ReadFile("testdata/golden.jsonl")
	if gotJSON := exportJSONL(t, want, k); !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("reading testdata/golden.sgrec:\ngot:\n%s\nwant:\n%s", gotJSON, wantJSON)
	}
	for _, card := range []string{"4111 1111 1111 1111", "5555 5555 5555 4444"} {
		if strings.Contains(string(wantJSON), card) {
			t.Errorf("golden recording holds the unredacted card number %s", card)
		}
	}
	checkCutAndTampered(t, "golden-cut.sgrec", "golden-tampered.sgrec")
	if rep, err := recorder.Verify(bytes.NewReader(want), int64(len(want))); err != nil || rep.Version != 3 {
		t.Errorf("verifying testdata/golden.sgrec: got version %d, %v; want version 3, nil", rep.Version, err)
	}
}

// TestGoldenOld checks that recordings of format versions 1 (SHA-256
// chain) and 2 (BLAKE3 chain, no channel numbers), written by earlier
// builds, still read to the same records, all of channel 0, and verify:
// testdata/golden-v1*.sgrec and golden-v2*.sgrec are those writers'
// golden files, kept as fixtures.
func TestGoldenOld(t *testing.T) {
	for _, v := range []string{"v1", "v2"} {
		t.Run(v, func(t *testing.T) {
			name := "testdata/golden-" + v + ".sgrec"
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(b, []byte("supportgate-recording "+v+"\n")) {
				t.Fatalf("%s is not a %s recording", name, v)
			}
			rep, err := recorder.Verify(bytes.NewReader(b), int64(len(b)))
			if err != nil || !rep.Complete || "v"+itoa(rep.Version) != v {
				t.Fatalf("verifying %s: got %v (complete %v, version %d), want nil", name, err, rep.Complete, rep.Version)
			}
			want, _ := os.ReadFile("testdata/golden-" + v + ".jsonl")
			if got := exportJSONL(t, b, goldenKeys(t)); !bytes.Equal(got, want) {
				t.Errorf("reading %s:\ngot:\n%s\nwant:\n%s", name, got, want)
			}
			checkCutAndTampered(t, "golden-"+v+"-cut.sgrec", "golden-"+v+"-tampered.sgrec")
		})
	}

	// The version line is signed: relabelling a recording as another
	// version fails at the header.
	for _, tt := range []struct{ name, from, to string }{
		{"golden.sgrec", "v3\n", "v2\n"},
		{"golden-v2.sgrec", "v2\n", "v3\n"},
		{"golden-v2.sgrec", "v2\n", "v1\n"},
		{"golden-v1.sgrec", "v1\n", "v2\n"},
	} {
		b, _ := os.ReadFile(filepath.Join("testdata", tt.name))
		b = bytes.Replace(b, []byte(tt.from), []byte(tt.to), 1)
		_, err := recorder.Verify(bytes.NewReader(b), int64(len(b)))
		var te *recorder.TamperError
		if !errors.As(err, &te) || te.Record != 0 {
			t.Errorf("%s relabelled %q: got %v, want a TamperError at the header", tt.name, tt.to, err)
		}
	}
}

// checkCutAndTampered checks that Verify reports the cut golden file as
// cut short and names the tampered one's flipped record.
func checkCutAndTampered(t *testing.T, cut, tampered string) {
	t.Helper()
	b, _ := os.ReadFile(filepath.Join("testdata", cut))
	if _, err := recorder.Verify(bytes.NewReader(b), int64(len(b))); !errors.Is(err, recorder.ErrCutShort) {
		t.Errorf("%s: got %v, want %v", cut, err, recorder.ErrCutShort)
	}
	b, _ = os.ReadFile(filepath.Join("testdata", tampered))
	_, err := recorder.Verify(bytes.NewReader(b), int64(len(b)))
	var te *recorder.TamperError
	if !errors.As(err, &te) || te.Record != 4 {
		t.Errorf("%s: got %v, want a TamperError at record 4", tampered, err)
	}
}

// FuzzReadRecording feeds arbitrary bytes to Verify and to the keyed
// Reader (with seeking on each channel): they must fail cleanly, never
// panic or hang. The seeds are testdata's recordings of every version.
func FuzzReadRecording(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.sgrec")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	k := goldenKeys(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, verr := recorder.Verify(bytes.NewReader(b), int64(len(b)))
		if rep == nil {
			t.Fatal("nil report")
		}
		r, err := recorder.Open(bytes.NewReader(b), int64(len(b)), k.Identity)
		if err != nil {
			return
		}
		n := 0
		for ; ; n++ {
			if _, err = r.Next(); err != nil {
				break
			}
		}
		if verr == nil && err != nil && !errors.Is(err, errEOF) {
			t.Fatalf("Verify passed but reading failed: %v", err)
		}
		for _, ch := range []int{0, 1, 2} { // the golden recording's channels
			r.SeekChannel(ch, 3*time.Second)
			for i := 0; i < 100; i++ {
				if _, err := r.Next(); err != nil {
					break
				}
			}
		}
		r.FirstTerminal()
	})
}

// TestSeekMatchesSequential checks that a seek through the time index
// yields the same screen as playing the recording from the start.
func TestSeekMatchesSequential(t *testing.T) {
	k := recordertest.NewKeys(t)
	clk := recordertest.NewClock(t0)
	path := filepath.Join(t.TempDir(), "long.sgrec")
	w, err := recorder.Create(path, recordertest.Config(k, clk))
	if err != nil {
		t.Fatal(err)
	}
	w.Resize(60, 12)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		clk.Advance(time.Duration(rng.IntN(400)) * time.Millisecond)
		switch rng.IntN(10) {
		case 0:
			w.Output([]byte("\x1b[H\x1b[2J"))
		case 1:
			w.Output([]byte("\x1b[" + itoa(1+rng.IntN(12)) + ";" + itoa(1+rng.IntN(60)) + "H\x1b[7m*\x1b[0m"))
		case 2:
			if rng.IntN(20) == 0 {
				w.Resize(40+rng.IntN(60), 10+rng.IntN(20))
			}
		default:
			w.Output([]byte("line " + itoa(i) + " " + strings.Repeat("ab", rng.IntN(40)) + "\r\n"))
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := recorder.OpenFile(path, k.Identity)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	total, err := r.Duration()
	if err != nil {
		t.Fatal(err)
	}
	idx, _ := r.Index()
	if len(idx) < 50 {
		t.Fatalf("index entries: got %d, want >= 50", len(idx))
	}
	for range 8 {
		at := time.Duration(rng.Int64N(int64(total)))
		want := screenAt(t, r, at, false)
		got := screenAt(t, r, at, true)
		if got != want {
			t.Fatalf("screen at %v after seek:\n%s\nwant:\n%s", at, got, want)
		}
	}
}

// TestSeekChannels checks that each channel of a recording with two
// terminals at once has its own keyframes, and that seeking on one channel
// yields the same screen as playing that channel's records from the start.
func TestSeekChannels(t *testing.T) {
	k := recordertest.NewKeys(t)
	clk := recordertest.NewClock(t0)
	path := filepath.Join(t.TempDir(), "two.sgrec")
	w, err := recorder.Create(path, recordertest.Config(k, clk))
	if err != nil {
		t.Fatal(err)
	}
	w.ResizeOn(1, 60, 12)
	w.ResizeOn(2, 50, 10)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 2000 {
		clk.Advance(time.Duration(rng.IntN(400)) * time.Millisecond)
		ch := 1 + rng.IntN(2)
		switch rng.IntN(12) {
		case 0:
			w.OutputOn(ch, []byte("\x1b[H\x1b[2J"))
		case 1:
			w.OutputOn(ch, []byte("\x1b["+itoa(1+rng.IntN(10))+";"+itoa(1+rng.IntN(50))+"H\x1b[7m"+itoa(ch)+"\x1b[0m"))
		default:
			// Half a line at a time, so that the two channels' lines
			// would be torn apart if they shared a screen.
			line := "ch" + itoa(ch) + " line " + itoa(i) + " " + strings.Repeat(itoa(ch), rng.IntN(30))
			w.OutputOn(ch, []byte(line[:len(line)/2]))
			w.OutputOn(ch, []byte(line[len(line)/2:]+"\r\n"))
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := recorder.OpenFile(path, k.Identity)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := r.FirstTerminal(); got != 1 {
		t.Errorf("FirstTerminal: got %d, want 1", got)
	}
	idx, _ := r.Index()
	per := map[int]int{}
	for _, e := range idx {
		per[e.Channel]++
	}
	if per[1] < 20 || per[2] < 20 || len(per) != 2 {
		t.Fatalf("keyframes per channel: got %v, want >= 20 for each of 1 and 2 only", per)
	}
	total, _ := r.Duration()
	for range 6 {
		at := time.Duration(rng.Int64N(int64(total)))
		for _, ch := range []int{1, 2} {
			want := screenOn(t, r, ch, at, false)
			got := screenOn(t, r, ch, at, true)
			if got != want {
				t.Fatalf("channel %d at %v after seek:\n%s\nwant:\n%s", ch, at, got, want)
			}
			other := "ch" + itoa(3-ch) + " line"
			if strings.Contains(got, other) {
				t.Fatalf("channel %d at %v shows the other channel's %q:\n%s", ch, at, other, got)
			}
		}
	}
	// Channel 0 has nothing: Seek finds no keyframe and starts over.
	if kf, err := r.Seek(total); kf != nil || err != nil {
		t.Errorf("Seek on the empty channel 0: got %v, %v; want nil, nil", kf, err)
	}
}

// TestChannelState checks EndChannel and the cap on open channels: an
// ended channel's held-back redaction is written and counted, and its
// state is released, making room for another.
func TestChannelState(t *testing.T) {
	k := recordertest.NewKeys(t)
	clk := recordertest.NewClock(t0)
	var buf bytes.Buffer
	w, err := recorder.NewWriter(&buf, recordertest.Config(k, clk))
	if err != nil {
		t.Fatal(err)
	}
	for ch := range recorder.MaxOpenChannels {
		if err := w.OutputOn(ch+1, []byte("x")); err != nil {
			t.Fatalf("channel %d: %v", ch+1, err)
		}
	}
	if err := w.StdinOn(1000, []byte("y")); !errors.Is(err, recorder.ErrTooManyChannels) {
		t.Fatalf("one channel too many: got %v, want %v", err, recorder.ErrTooManyChannels)
	}
	if err := w.OutputOn(-1, []byte("y")); err == nil {
		t.Fatal("channel -1 accepted")
	}
	w.OutputOn(1, []byte("card 4111 1111 1111 1111")) // held back: the digits may go on
	if err := w.EndChannel(1); err != nil {
		t.Fatal(err)
	}
	if got := w.Redactions(); got != 1 {
		t.Errorf("redactions after EndChannel: got %d, want 1", got)
	}
	if err := w.StdinOn(1000, []byte("y")); err != nil {
		t.Fatalf("after EndChannel: got %v, want room for another channel", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := recorder.Open(bytes.NewReader(buf.Bytes()), int64(buf.Len()), k.Identity)
	if err != nil {
		t.Fatal(err)
	}
	var ch1 string
	for {
		rec, err := r.Next()
		if err != nil {
			break
		}
		if rec.Type == recorder.TypeOutput && rec.Channel == 1 {
			ch1 += string(rec.Data)
		}
	}
	if ch1 != "xcard **** **** **** 1111" {
		t.Errorf("channel 1's output: got %q, want %q", ch1, "xcard **** **** **** 1111")
	}
}

// screenAt renders channel 0's terminal at time at, from the start or by
// seeking.
func screenAt(t *testing.T, r *recorder.Reader, at time.Duration, seek bool) string {
	return screenOn(t, r, 0, at, seek)
}

// screenOn renders channel ch's terminal at time at, from the start or by
// seeking.
func screenOn(t *testing.T, r *recorder.Reader, ch int, at time.Duration, seek bool) string {
	t.Helper()
	s := vt.New(80, 24)
	kf, err := r.SeekChannel(ch, 0)
	if seek {
		kf, err = r.SeekChannel(ch, at)
	}
	if err != nil {
		t.Fatal(err)
	}
	if kf != nil {
		s.Resize(kf.Cols, kf.Rows)
		s.Write(kf.Data)
	}
	for {
		rec, err := r.Next()
		if err != nil || rec.Time > at {
			break
		}
		if rec.Channel != ch {
			continue
		}
		switch rec.Type {
		case recorder.TypeOutput:
			s.Write(rec.Data)
		case recorder.TypeResize:
			s.Resize(rec.Cols, rec.Rows)
		}
	}
	return s.String()
}

func itoa(n int) string { return strconvItoa(n) }
