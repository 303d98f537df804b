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

// writeGolden writes the golden recording deterministically.
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
	w.Output([]byte("echo 4111 1111 "))
	w.Output([]byte("1111 1111\r\n4111 1111 1111 1111\r\n"))
	clk.Advance(4 * time.Second)
	w.Chat("customer", "ok, go ahead")
	w.Media("vp8", 6*time.Second, []byte{0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00}, true)
	w.Forward(recorder.ForwardMeta{ID: "fw1", State: "open", Protocol: "tcp", Target: "localhost:80"})
	clk.Advance(5 * time.Second)
	w.Output([]byte("\x1b[2J\x1b[Hdone\r\n"))
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
	if strings.Contains(string(wantJSON), "4111 1111 1111 1111") {
		t.Error("golden recording holds an unredacted card number")
	}
	checkCutAndTampered(t, "golden-cut.sgrec", "golden-tampered.sgrec")
}

// TestGoldenV1 checks that recordings of format version 1 (SHA-256 chain),
// written by earlier builds, still read to the same records and verify:
// testdata/golden-v1*.sgrec are that writer's golden files, kept as
// fixtures.
func TestGoldenV1(t *testing.T) {
	b, err := os.ReadFile("testdata/golden-v1.sgrec")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("supportgate-recording v1\n")) {
		t.Fatal("testdata/golden-v1.sgrec is not a version 1 recording")
	}
	rep, err := recorder.Verify(bytes.NewReader(b), int64(len(b)))
	if err != nil || !rep.Complete {
		t.Fatalf("verifying testdata/golden-v1.sgrec: got %v (complete %v), want nil", err, rep.Complete)
	}
	want, _ := os.ReadFile("testdata/golden-v1.jsonl")
	if got := exportJSONL(t, b, goldenKeys(t)); !bytes.Equal(got, want) {
		t.Errorf("reading testdata/golden-v1.sgrec:\ngot:\n%s\nwant:\n%s", got, want)
	}
	checkCutAndTampered(t, "golden-v1-cut.sgrec", "golden-v1-tampered.sgrec")

	// The version line is signed: relabelling a recording as the other
	// version fails at the header.
	for name, from := range map[string]string{"golden.sgrec": "v2\n", "golden-v1.sgrec": "v1\n"} {
		b, _ := os.ReadFile(filepath.Join("testdata", name))
		to := map[string]string{"v2\n": "v1\n", "v1\n": "v2\n"}[from]
		b = bytes.Replace(b, []byte(from), []byte(to), 1)
		_, err := recorder.Verify(bytes.NewReader(b), int64(len(b)))
		var te *recorder.TamperError
		if !errors.As(err, &te) || te.Record != 0 {
			t.Errorf("%s relabelled %q: got %v, want a TamperError at the header", name, to, err)
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
// Reader (with seeking): they must fail cleanly, never panic or hang.
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
		r.Seek(3 * time.Second)
		for i := 0; i < 100; i++ {
			if _, err := r.Next(); err != nil {
				break
			}
		}
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

// screenAt renders the terminal at time at, from the start or by seeking.
func screenAt(t *testing.T, r *recorder.Reader, at time.Duration, seek bool) string {
	t.Helper()
	s := vt.New(80, 24)
	kf, err := r.Seek(0)
	if seek {
		kf, err = r.Seek(at)
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
