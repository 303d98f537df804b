package recorder_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"supportgate/recorder"
	"supportgate/recorder/recordertest"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// writeSample writes a small recording with every record type and returns
// its path.
func writeSample(t *testing.T, k recordertest.Keys, mutate func(*recorder.WriterConfig)) string {
	t.Helper()
	clk := recordertest.NewClock(t0)
	cfg := recordertest.Config(k, clk)
	cfg.RecordInput = true
	if mutate != nil {
		mutate(&cfg)
	}
	path := filepath.Join(t.TempDir(), "rec.sgrec")
	w, err := recorder.Create(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.Event("consent.approved", map[string]string{"scopes": "view,chat,shell"}))
	must(w.Resize(80, 24))
	for i := range 30 {
		clk.Advance(time.Second)
		must(w.Output([]byte("line " + strings.Repeat("x", i) + "\r\n")))
		if i == 10 {
			must(w.Input([]byte("ls\r")))
			must(w.Chat("agent", "hello"))
			must(w.Resize(100, 30))
		}
		if i == 20 {
			must(w.Media("vp8", 2*time.Second, []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a}, true))
			must(w.Forward(recorder.ForwardMeta{ID: "f1", State: "open", Protocol: "tcp", Target: "localhost:80"}))
		}
	}
	must(w.Close())
	must(w.Close()) // idempotent
	return path
}

func TestRoundTrip(t *testing.T) {
	k := recordertest.NewKeys(t)
	path := writeSample(t, k, nil)
	recs, err := recordertest.ReadAll(t, path, k.Identity)
	if err != nil {
		t.Fatal(err)
	}
	count := map[recorder.Type]int{}
	var out bytes.Buffer
	for _, r := range recs {
		count[r.Type]++
		if r.Type == recorder.TypeOutput {
			out.Write(r.Data)
		}
	}
	want := map[recorder.Type]int{
		recorder.TypeOutput: 30, recorder.TypeInput: 1, recorder.TypeResize: 2, recorder.TypeChat: 1,
		recorder.TypeEvent: 1, recorder.TypeMedia: 1, recorder.TypeForward: 1,
	}
	for typ, n := range want {
		if count[typ] != n {
			t.Errorf("%v records: got %d, want %d", typ, count[typ], n)
		}
	}
	if count[recorder.TypeKeyframe] < 3 {
		t.Errorf("keyframes: got %d, want >= 3 (one per checkpoint interval)", count[recorder.TypeKeyframe])
	}
	if !strings.Contains(out.String(), "line xxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n") {
		t.Errorf("output missing last line")
	}
	rep, err := recorder.VerifyFile(path)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if !rep.Complete || rep.Duration != 30*time.Second || rep.Checkpoints < 6 {
		t.Errorf("report: got %+v", rep)
	}
	for _, r := range recs {
		switch r.Type {
		case recorder.TypeChat:
			if r.From != "agent" || r.Text != "hello" {
				t.Errorf("chat: got %q %q", r.From, r.Text)
			}
		case recorder.TypeMedia:
			if r.Codec != "vp8" || r.MediaTime != 2*time.Second || !r.IsKeyframe || len(r.Data) != 6 {
				t.Errorf("media: got %+v", r)
			}
		case recorder.TypeForward:
			if r.Forward == nil || r.Forward.Target != "localhost:80" {
				t.Errorf("forward: got %+v", r.Forward)
			}
		}
	}
}

func TestCheckpointsAtMostTenSecondsApart(t *testing.T) {
	k := recordertest.NewKeys(t)
	clk := recordertest.NewClock(t0)
	cfg := recordertest.Config(k, clk)
	cfg.CheckpointInterval = time.Hour // capped at 10 s
	var buf bytes.Buffer
	w, err := recorder.NewWriter(&buf, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 60 {
		clk.Advance(time.Second)
		w.Output([]byte("tick\r\n"))
	}
	w.Close()
	rep, err := recorder.Verify(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Checkpoints < 6 {
		t.Errorf("checkpoints in 60 s: got %d, want >= 6", rep.Checkpoints)
	}
}

func TestInputOffByDefault(t *testing.T) {
	k := recordertest.NewKeys(t)
	path := writeSample(t, k, func(c *recorder.WriterConfig) { c.RecordInput = false })
	recs, err := recordertest.ReadAll(t, path, k.Identity)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Type == recorder.TypeInput {
			t.Fatalf("input recorded although RecordInput is off")
		}
	}
}

// TestStdinAlwaysRecorded: what is sent to a shell or command without a
// terminal is recorded even with RecordInput off, redacted like input, and
// a card number split across two writes, the second one the last before
// Close, is masked whole.
func TestStdinAlwaysRecorded(t *testing.T) {
	k := recordertest.NewKeys(t)
	path := filepath.Join(t.TempDir(), "rec.sgrec")
	w, err := recorder.Create(path, recordertest.Config(k, recordertest.NewClock(t0)))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"typed at a prompt\r", "chmod 4755 /tmp/x; echo 4111 1111 ", "1111 1111"} {
		write := w.Stdin
		if p == "typed at a prompt\r" {
			write = w.Input // on a terminal: off by default
		}
		if err := write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	recs, err := recordertest.ReadAll(t, path, k.Identity)
	if err != nil {
		t.Fatal(err)
	}
	var in bytes.Buffer
	for _, r := range recs {
		if r.Type == recorder.TypeInput {
			in.Write(r.Data)
		}
	}
	if want := "chmod 4755 /tmp/x; echo **** **** **** 1111"; in.String() != want {
		t.Errorf("input records: %q, want %q", in.String(), want)
	}
}

// TestRedactionDisabled checks that RedactConfig.Disabled records terminal
// bytes (also beyond one record's 32 KiB) and chat as they are, and that
// the default redacts the same input.
func TestRedactionDisabled(t *testing.T) {
	card := "pay 4111 1111 1111 1111 now\r\n"
	long := strings.Repeat("x", 40<<10) + card
	for _, tt := range []struct {
		name     string
		disabled bool
		want     string
	}{
		{"default", false, strings.ReplaceAll(card, "4111 1111 1111 1111", "**** **** **** 1111")},
		{"disabled", true, card},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k := recordertest.NewKeys(t)
			path := filepath.Join(t.TempDir(), "rec.sgrec")
			cfg := recordertest.Config(k, recordertest.NewClock(t0))
			cfg.Redact.Disabled = tt.disabled
			w, err := recorder.Create(path, cfg)
			if err != nil {
				t.Fatal(err)
			}
			w.Output([]byte(card[:10]))
			w.Output([]byte(card[10:]))
			w.Output([]byte(long))
			w.Chat("customer", card)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			recs, err := recordertest.ReadAll(t, path, k.Identity)
			if err != nil {
				t.Fatal(err)
			}
			var out, chat string
			if marked := len(recs) > 0 && recs[0].Type == recorder.TypeEvent && recs[0].Kind == "redaction.disabled"; marked != tt.disabled {
				t.Errorf("first record says redaction.disabled: %v, want %v", marked, tt.disabled)
			}
			for _, r := range recs {
				switch r.Type {
				case recorder.TypeOutput:
					if len(r.Data) > 32<<10 {
						t.Errorf("output record of %d bytes, want at most 32 KiB", len(r.Data))
					}
					out += string(r.Data)
				case recorder.TypeChat:
					chat = r.Text
				}
			}
			wantLong := strings.Repeat("x", 40<<10) + tt.want
			if out != tt.want+wantLong {
				t.Errorf("output: got %q..., want %q...", out[:min(len(out), 40)], (tt.want + wantLong)[:40])
			}
			if chat != tt.want {
				t.Errorf("chat: got %q, want %q", chat, tt.want)
			}
		})
	}
}

func TestWrongIdentity(t *testing.T) {
	k := recordertest.NewKeys(t)
	path := writeSample(t, k, nil)
	other := recordertest.NewKeys(t)
	if _, err := recorder.OpenFile(path, other.Identity); err == nil {
		t.Fatal("opened with the wrong identity")
	}
}

func TestConcurrentWriters(t *testing.T) {
	k := recordertest.NewKeys(t)
	clk := recordertest.NewClock(t0)
	cfg := recordertest.Config(k, clk)
	cfg.FlushInterval = time.Millisecond
	path := filepath.Join(t.TempDir(), "c.sgrec")
	w, err := recorder.Create(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				clk.Advance(10 * time.Millisecond)
				switch g {
				case 0:
					w.Output([]byte("out\r\n"))
				case 1:
					w.Chat("c", "hi")
				case 2:
					w.Media("vp8", time.Duration(i)*time.Millisecond, make([]byte, 100), i%10 == 0)
				case 3:
					w.Event("tick", nil)
					if i%50 == 0 {
						w.Flush()
					}
				}
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Output([]byte("late")); !errors.Is(err, recorder.ErrClosed) {
		t.Errorf("write after close: got %v, want ErrClosed", err)
	}
	recs, err := recordertest.ReadAll(t, path, k.Identity)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 800 {
		t.Errorf("records: got %d, want >= 800", len(recs))
	}
}

func TestSizeCap(t *testing.T) {
	k := recordertest.NewKeys(t)
	clk := recordertest.NewClock(t0)
	cfg := recordertest.Config(k, clk)
	cfg.MaxBytes = 100 << 10
	failures := make(chan error, 2)
	cfg.OnFailure = func(err error) { failures <- err }
	path := filepath.Join(t.TempDir(), "cap.sgrec")
	w, err := recorder.Create(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var capErr error
	for range 200 {
		clk.Advance(100 * time.Millisecond)
		if err := w.Output(bytes.Repeat([]byte("y"), 1000)); err != nil {
			capErr = err
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(capErr, recorder.ErrSizeCap) {
		t.Fatalf("got %v, want ErrSizeCap", capErr)
	}
	// Close waited for OnFailure, which was called once.
	if len(failures) != 1 || !errors.Is(<-failures, recorder.ErrSizeCap) {
		t.Errorf("OnFailure: want one call with ErrSizeCap")
	}
	st, _ := os.Stat(path)
	if st.Size() > cfg.MaxBytes {
		t.Errorf("size: got %d, want <= %d", st.Size(), cfg.MaxBytes)
	}
	rep, err := recorder.VerifyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Stats.Capped || rep.Stats.Dropped == 0 {
		t.Errorf("stats: got %+v, want capped with drops", rep.Stats)
	}
	recs, err := recordertest.ReadAll(t, path, k.Identity)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range recs {
		if r.Type == recorder.TypeEvent && r.Kind == "recording.size_cap" {
			found = true
		}
	}
	if !found {
		t.Error("no recording.size_cap event")
	}
}

// TestOnFailureWriteError: a file that fails is reported once through
// OnFailure, and the records after it are refused.
func TestOnFailureWriteError(t *testing.T) {
	k := recordertest.NewKeys(t)
	clk := recordertest.NewClock(t0)
	cfg := recordertest.Config(k, clk)
	failures := make(chan error, 2)
	cfg.OnFailure = func(err error) { failures <- err }
	dst := &failAfter{n: 64 << 10}
	w, err := recorder.NewWriter(dst, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 32 { // 128 KiB, flushed: past what dst takes
		w.Output(bytes.Repeat([]byte("z"), 4<<10))
		w.Flush()
	}
	var got error
	select {
	case got = <-failures:
	case <-time.After(10 * time.Second):
		t.Fatal("OnFailure was not called")
	}
	if !errors.Is(got, errDiskFull) {
		t.Fatalf("OnFailure: got %v, want the write error", got)
	}
	if err := w.Output([]byte("after")); err == nil {
		t.Error("Output after the failure: no error")
	}
	w.Close()
	if len(failures) != 0 {
		t.Error("OnFailure called more than once")
	}
}

var errDiskFull = errors.New("no space left on device")

// failAfter takes n bytes, then fails every write.
type failAfter struct{ n int }

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		f.n = 0
		return 0, errDiskFull
	}
	f.n -= len(p)
	return len(p), nil
}

// TestLargeRecords reads frames larger than the reader's initial buffer.
func TestLargeRecords(t *testing.T) {
	k := recordertest.NewKeys(t)
	clk := recordertest.NewClock(t0)
	var buf bytes.Buffer
	w, err := recorder.NewWriter(&buf, recordertest.Config(k, clk))
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte{0xab}, 300<<10)
	for i := range 3 {
		clk.Advance(6 * time.Second)
		if err := w.Media("vp8", time.Duration(i)*time.Second, big, true); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	r, err := recorder.Open(bytes.NewReader(buf.Bytes()), int64(buf.Len()), k.Identity)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		rec, err := r.Next()
		if err != nil || !bytes.Equal(rec.Data, big) {
			t.Fatalf("media %d: err %v, %d bytes", i, err, len(rec.Data))
		}
	}
	if _, err := recorder.Verify(bytes.NewReader(buf.Bytes()), int64(buf.Len())); err != nil {
		t.Fatal(err)
	}
}

func TestEnded(t *testing.T) {
	k := recordertest.NewKeys(t)
	path := filepath.Join(t.TempDir(), "r.sgrec")
	w, err := recorder.Create(path, recordertest.Config(k, recordertest.NewClock(time.Unix(1e9, 0))))
	if err != nil {
		t.Fatal(err)
	}
	w.Output([]byte("hello\r\n"))
	w.Flush()
	ended := func() bool {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		ok, err := recorder.Ended(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatalf("Ended: %v", err)
		}
		return ok
	}
	if ended() {
		t.Error("a recording still being written reports its end")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !ended() {
		t.Error("a closed recording reports no end")
	}
}

// syncDst is a destination with a Sync method that notes how many bytes
// had been written at each sync, and can fail its syncs.
type syncDst struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	syncs []int
	fail  error
}

func (d *syncDst) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.buf.Write(p)
}

func (d *syncDst) Sync() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.syncs = append(d.syncs, d.buf.Len())
	return d.fail
}

func (d *syncDst) state() (syncs []int, size int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]int(nil), d.syncs...), d.buf.Len()
}

// TestWriterSyncs: a checkpoint starts a sync while the recording goes on,
// Close returns only after a sync that covers the end record, and a failed
// sync fails the recording.
func TestWriterSyncs(t *testing.T) {
	k := recordertest.NewKeys(t)
	clk := recordertest.NewClock(t0)
	cfg := recordertest.Config(k, clk)
	cfg.CheckpointInterval = time.Second
	d := &syncDst{}
	w, err := recorder.NewWriter(d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Output([]byte("before the checkpoint\r\n")); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Second)
	if err := w.Output([]byte("due now\r\n")); err != nil { // writes the checkpoint
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		syncs, _ := d.state()
		if len(syncs) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no sync after a checkpoint")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := w.Output([]byte("after it\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	syncs, size := d.state()
	if last := syncs[len(syncs)-1]; last != size {
		t.Fatalf("last sync covered %d bytes of %d: Close returned before the end record was synced", last, size)
	}
	if syncs[0] >= size {
		t.Errorf("the checkpoint's sync covered the whole file (%d bytes)", size)
	}
	if _, err := recorder.Verify(bytes.NewReader(d.buf.Bytes()), int64(size)); err != nil {
		t.Fatalf("recording does not verify: %v", err)
	}

	// A failed sync cuts the recording short and Close says so.
	bad := &syncDst{fail: errors.New("disk gone")}
	w, err = recorder.NewWriter(bad, recordertest.Config(k, recordertest.NewClock(t0)))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Output([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "disk gone") {
		t.Fatalf("Close after a failed sync: %v, want the sync's error", err)
	}
}
