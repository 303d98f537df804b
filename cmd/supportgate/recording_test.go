package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"flag"
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

var updateRecording = flag.Bool("update-recording", false, "rewrite testdata/recording* golden files")

// writeCLISample writes a deterministic recording and the identity file
// that opens it.
func writeCLISample(t *testing.T) (path, idFile string, k recordertest.Keys) {
	t.Helper()
	// a throwaway test-only identity
	k = recordertest.FixedKeys(t, "cli", "AGE-SECRET-KEY-18AG9EGX3MHNZ9SYXX0S5C5LVK08TD4Q3S038SHRLYFSN7QCTFKFSYU95M9")
	dir := t.TempDir()
	idFile = filepath.Join(dir, "identity.txt")
	if err := os.WriteFile(idFile, []byte("# test identity\n"+k.Identity.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	clk := recordertest.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	path = filepath.Join(dir, "rec.sgrec")
	w, err := recorder.Create(path, recordertest.Config(k, clk))
	if err != nil {
		t.Fatal(err)
	}
	w.Resize(80, 24)
	for i := range 40 {
		clk.Advance(time.Second)
		w.Output([]byte("output line " + strings.Repeat("=", i) + "\r\n"))
		if i == 5 {
			w.Chat("agent", "card 4111 1111 1111 1111")
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path, idFile, k
}

func runTestCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &o, stderr: &e, getenv: func(string) string { return "" }}
	code = runCLI(env, args)
	return code, o.String(), e.String()
}

// frameOffsets returns the offsets of the frames after the header.
func frameOffsets(t *testing.T, b []byte) []int {
	i := bytes.Index(b, []byte("\nsignature: "))
	off := i + 1 + bytes.Index(b[i+1:], []byte("\n\n")) + 2
	var offs []int
	for off+4 <= len(b) && string(b[off:off+8]) != "SGRECEND" {
		offs = append(offs, off)
		off += 4 + int(binary.BigEndian.Uint32(b[off:]))
	}
	return offs
}

func TestVerifyCommand(t *testing.T) {
	path, _, k := writeCLISample(t)
	orig, _ := os.ReadFile(path)
	offs := frameOffsets(t, orig)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o600)
		return p
	}
	flipped := bytes.Clone(orig)
	flipped[offs[11]+25] ^= 1
	pub := []byte(k.Signer.Public().(ed25519.PublicKey))
	other := recordertest.NewKeys(t)

	tests := []struct {
		name       string
		args       []string
		code       int
		wantStderr string
	}{
		{"intact", []string{"verify", path}, 0, ""},
		{"tampered", []string{"verify", write("flip.sgrec", flipped)}, 1, "tampered: record 12: hash chain mismatch"},
		{"cut short", []string{"verify", write("cut.sgrec", orig[:offs[20]])}, 2, "intact but cut short after record 20"},
		{"trusted signer", []string{"verify", "--signer", b64(pub), path}, 0, ""},
		{"untrusted signer", []string{"verify", "--signer", b64([]byte(other.Signer.Public().(ed25519.PublicKey))), path}, 1, "not the trusted gateway key"},
		{"not a recording", []string{"verify", write("junk", []byte("hello"))}, 1, "not a supportgate recording"},
		// Usage errors exit 3, never 2 (intact but cut short) or 0.
		{"no file", []string{"verify"}, 3, "exactly one FILE"},
		{"two files", []string{"verify", path, path}, 3, "exactly one FILE"},
		{"unknown flag", []string{"verify", "--sigen", b64(pub), path}, 3, "unknown flag"},
		{"flag without value", []string{"verify", path, "--signer"}, 3, "flag needs an argument"},
		{"malformed signer", []string{"verify", "--signer", "not-a-key", path}, 3, "--signer: not a base64 Ed25519 public key"},
		{"malformed signer, cut short", []string{"verify", "--signer", "AAAA", write("cut2.sgrec", orig[:offs[20]])}, 3, "--signer"},
		{"malformed signer, tampered", []string{"verify", "--signer", "AAAA", write("flip2.sgrec", flipped)}, 3, "--signer"},
		{"malformed signer, bundle", []string{"verify", "--signer", "AAAA", write("b.zip", []byte("PK\x03\x04"))}, 3, "--signer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runTestCLI(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit code: got %d, want %d (stderr %q)", code, tt.code, stderr)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr: got %q, want it to contain %q", stderr, tt.wantStderr)
			}
		})
	}
}

func TestVerifyGolden(t *testing.T) {
	path, _, _ := writeCLISample(t)
	code, stdout, _ := runTestCLI(t, "verify", path)
	if code != 0 {
		t.Fatalf("exit code %d", code)
	}
	golden := filepath.Join("testdata", "recording-verify.golden")
	if *updateRecording {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(golden, []byte(stdout), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update-recording)", err)
	}
	if stdout != string(want) {
		t.Errorf("verify output:\ngot:\n%s\nwant:\n%s", stdout, want)
	}
}

func TestExportCommand(t *testing.T) {
	path, idFile, _ := writeCLISample(t)
	dir := t.TempDir()
	cast := filepath.Join(dir, "out.cast")
	if code, _, stderr := runTestCLI(t, "export", "--identity", idFile, "--format", "asciicast", "-o", cast, path); code != 0 {
		t.Fatalf("asciicast export: exit %d: %s", code, stderr)
	}
	b, _ := os.ReadFile(cast)
	if !strings.HasPrefix(string(b), `{"env":{"TERM":"xterm-256color"},"height":24,`) || !strings.Contains(string(b), `"o","output line =`) {
		t.Errorf("asciicast: got %.200q", b)
	}
	jl := filepath.Join(dir, "out.jsonl")
	if code, _, stderr := runTestCLI(t, "export", "--identity", idFile, "--format", "jsonl", "-o", jl, path); code != 0 {
		t.Fatalf("jsonl export: exit %d: %s", code, stderr)
	}
	b, _ = os.ReadFile(jl)
	if !strings.Contains(string(b), `"from":"agent"`) || !strings.Contains(string(b), `**** **** **** 1111`) ||
		strings.Contains(string(b), "4111 1111") {
		t.Errorf("jsonl: chat missing or not redacted")
	}
	code, _, stderr := runTestCLI(t, "export", "--identity", idFile, "--format", "ivf", "-o", filepath.Join(dir, "x.ivf"), path)
	if code != 1 || !strings.Contains(stderr, "no screen share in the recording") {
		t.Errorf("ivf export without media: got %d %q", code, stderr)
	}
	code, _, stderr = runTestCLI(t, "export", "--identity", idFile, "--format", "webm", "-o", filepath.Join(dir, "x.webm"), path)
	if code != 1 || !strings.Contains(stderr, "no VP8 key frame") {
		t.Errorf("webm export without media: got %d %q", code, stderr)
	}
	code, _, stderr = runTestCLI(t, "export", "--identity", idFile, "--format", "mp4", "-o", "x", path)
	if code != 2 || !strings.Contains(stderr, "--format must be") {
		t.Errorf("bad format: got %d %q", code, stderr)
	}
	other := recordertest.NewKeys(t)
	otherID := filepath.Join(dir, "other.txt")
	os.WriteFile(otherID, []byte(other.Identity.String()+"\n"), 0o600)
	code, _, stderr = runTestCLI(t, "export", "--identity", otherID, "--format", "jsonl", "-o", jl, path)
	if code != 1 || !strings.Contains(stderr, "did not match") {
		t.Errorf("wrong identity: got %d %q", code, stderr)
	}
}

// TestExportWebMCommand exports the screen share of a recording as WebM
// with the CLI and has ffprobe read it back.
func TestExportWebMCommand(t *testing.T) {
	ffprobe := realpeer.Require(t, "ffprobe")
	ivf, err := os.ReadFile("../../recorder/testdata/vp8-320x240.ivf") // 30 frames at 10 a second
	if err != nil {
		t.Fatal(err)
	}
	k := recordertest.FixedKeys(t, "cli", "AGE-SECRET-KEY-18AG9EGX3MHNZ9SYXX0S5C5LVK08TD4Q3S038SHRLYFSN7QCTFKFSYU95M9")
	dir := t.TempDir()
	idFile := filepath.Join(dir, "identity.txt")
	os.WriteFile(idFile, []byte(k.Identity.String()+"\n"), 0o600)
	clk := recordertest.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	path := filepath.Join(dir, "share.sgrec")
	w, err := recorder.Create(path, recordertest.Config(k, clk))
	if err != nil {
		t.Fatal(err)
	}
	frames := 0
	for off := 32; off+12 <= len(ivf); frames++ {
		n := int(binary.LittleEndian.Uint32(ivf[off:]))
		f := ivf[off+12 : off+12+n]
		clk.Advance(100 * time.Millisecond)
		if err := w.Media("vp8", time.Duration(frames)*100*time.Millisecond, f, f[0]&1 == 0); err != nil {
			t.Fatal(err)
		}
		if frames == 12 {
			w.Media("vp8", 1250*time.Millisecond, []byte{0x9d, 0x01}, true) // malformed: left out with a warning
		}
		off += 12 + n
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(dir, "share.webm")
	code, stdout, stderr := runTestCLI(t, "export", "--identity", idFile, "--format", "webm", "-o", out, path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	wantErr := "supportgate: export: " + path + ": left out 1 malformed VP8 frames (first: frame at 1.25s: too short for a VP8 frame: 2 bytes)\n"
	if stdout != "" || stderr != wantErr {
		t.Errorf("output: got stdout %q, stderr %q; want stderr %q", stdout, stderr, wantErr)
	}
	cmd := exec.Command(ffprobe, "-v", "error", "-count_frames", "-show_entries",
		"stream=codec_name,width,height,nb_read_frames:format=duration", "-of", "default=nw=1", out)
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, got)
	}
	want := "codec_name=vp8\nwidth=320\nheight=240\nnb_read_frames=" + strconv.Itoa(frames) + "\nduration=3.000000\n"
	if string(got) != want {
		t.Errorf("ffprobe: got\n%s\nwant\n%s", got, want)
	}
}

func TestReplayCommand(t *testing.T) {
	old := replaySleep
	var slept time.Duration
	replaySleep = func(d time.Duration, _ <-chan byte) (byte, bool) { slept += d; return 0, true }
	t.Cleanup(func() { replaySleep = old })
	path, idFile, _ := writeCLISample(t)

	code, stdout, stderr := runTestCLI(t, "replay", "--identity", idFile, "--speed", "2", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "output line "+strings.Repeat("=", 39)) {
		t.Errorf("replay output lacks the last line")
	}
	if slept < 19*time.Second || slept > 21*time.Second {
		t.Errorf("waited %v at speed 2 for 40 s, want about 20 s", slept)
	}
	// stderr is not a terminal: the chat comes as a line of its own, redacted.
	if !strings.Contains(stderr, "[00:00:06] chat agent: card ") || !strings.Contains(stderr, "1111") || strings.Contains(stderr, "4111 1111") {
		t.Errorf("replay's stderr lacks the redacted chat message at 6 s:\n%s", stderr)
	}

	slept = 0
	code, stdout, stderr = runTestCLI(t, "replay", "--identity", idFile, "--from", "30s", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Contains(stdout, "output line \r\n") {
		t.Errorf("seek replayed the start of the recording")
	}
	if !strings.Contains(stdout, "output line "+strings.Repeat("=", 25)) || !strings.Contains(stdout, "output line "+strings.Repeat("=", 39)) {
		t.Errorf("seek output lacks the screen at 30 s or the end")
	}
	if slept > 11*time.Second {
		t.Errorf("waited %v after seeking to 30 s of 40 s", slept)
	}
}

func b64(b []byte) string {
	return base64.StdEncoding.EncodeToString(b)
}

// TestReplayNoteText: chat and events on the progress line keep to one
// line, escape control characters (a chat message could carry escape
// sequences for the reviewer's terminal) and list event details.
func TestReplayNoteText(t *testing.T) {
	for _, tt := range []struct {
		rec  recorder.Record
		want string
	}{
		{recorder.Record{Type: recorder.TypeChat, From: "bob", Text: "hi\x1b[2J\x1b]0;pwned\x07\r\nthere\u009b"},
			`chat bob: hi\x1b[2J\x1b]0;pwned\x07\x0d\x0athere\x9b`},
		{recorder.Record{Type: recorder.TypeEvent, Kind: "participant.joined", Detail: map[string]string{"role": "supervisor", "name": "carol"}},
			"event participant.joined name=carol role=supervisor"},
		{recorder.Record{Type: recorder.TypeResize, Cols: 132, Rows: 43}, "recorded terminal 132x43"},
		{recorder.Record{Type: recorder.TypeChat, From: "a", Text: strings.Repeat("x", 100)},
			"chat a: " + strings.Repeat("x", noteMax-len("chat a: ")) + "…"},
		{recorder.Record{Type: recorder.TypeInput, Data: []byte("rm -rf /tmp/x\n\x1b[A")}, `input: rm -rf /tmp/x\x0a\x1b[A`},
	} {
		if got := noteText(tt.rec, noteMax); got != tt.want {
			t.Errorf("noteText(%+v) = %q, want %q", tt.rec, got, tt.want)
		}
	}
	// A note written as a line of its own (no progress line) is whole.
	long := recorder.Record{Type: recorder.TypeEvent, Kind: "ssh.exec", Detail: map[string]string{"command": strings.Repeat("y", 200) + " | base64"}}
	if got := noteText(long, 0); !strings.HasSuffix(got, " | base64") {
		t.Errorf("noteText without a limit cut the command: %q", got)
	}
}

// TestReplayInTerminal runs the real binary's replay in a terminal
// (script(1) gives it one): the progress line, drawn on stderr, carries
// the chat message and events while they are recent, the key help
// otherwise.
func TestReplayInTerminal(t *testing.T) {
	script := realpeer.Require(t, "script")
	bin := gatewayBinary(t)
	path, idFile, _ := writeCLISample(t)
	cmd := exec.Command(script, "-qec", bin+" replay --identity "+idFile+" --speed 50 "+path, "/dev/null")
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("replay in a terminal: %v\n%q", err, out)
	}
	s := string(out)
	if !strings.Contains(s, "output line "+strings.Repeat("=", 39)) {
		t.Errorf("the terminal lacks the last output line:\n%q", s)
	}
	if !strings.Contains(s, "00:00:06 / 00:00:40  15%  x50  chat agent: card ") {
		t.Errorf("the progress line at 6 s lacks the chat message:\n%q", s)
	}
	if !strings.Contains(s, "x50  [space] pause  [←/→] seek 10s  [q] quit") {
		t.Errorf("no progress line has the key help:\n%q", s)
	}
	// The writer's closing event, the count of redactions.
	if !strings.Contains(s, "00:00:40 / 00:00:40 100%  x50  event recording.redactions count=1") {
		t.Errorf("the progress line at the end lacks the redaction count event:\n%q", s)
	}
}

// TestReplayFilters: replay leaves out what recorded output could do to
// the reviewer's terminal beyond drawing (here a clipboard write and a
// cursor position request, which would answer on the reviewer's input),
// and keeps the text and a window title.
func TestReplayFilters(t *testing.T) {
	k := recordertest.NewKeys(t)
	dir := t.TempDir()
	idFile := filepath.Join(dir, "identity.txt")
	if err := os.WriteFile(idFile, []byte(k.Identity.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	clk := recordertest.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	path := filepath.Join(dir, "rec.sgrec")
	w, err := recorder.Create(path, recordertest.Config(k, clk))
	if err != nil {
		t.Fatal(err)
	}
	w.Output([]byte("\x1b]0;customer@host\x07before "))
	clk.Advance(time.Second)
	w.Output([]byte("\x1b]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaAo=\x07\x1b[6n"))
	clk.Advance(time.Second)
	w.Output([]byte("after\r\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	old := replaySleep
	replaySleep = func(time.Duration, <-chan byte) (byte, bool) { return 0, true }
	t.Cleanup(func() { replaySleep = old })
	code, stdout, stderr := runTestCLI(t, "replay", "--identity", idFile, path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "\x1b]0;customer@host\x07before ") || !strings.Contains(stdout, "after\r\n") {
		t.Errorf("replay lost the text or the title: %q", stdout)
	}
	if strings.Contains(stdout, "\x1b]52") || strings.Contains(stdout, "\x1b[6n") {
		t.Errorf("replay passed a clipboard write or a status request to the terminal: %q", stdout)
	}
}

// TestVerifyNamesParts: verify of one part of a session recorded in
// several files (resumed after a restart) says so and names them all: the
// first part alone reads as intact and complete. A file that is not a
// recording is named in the error.
func TestVerifyNamesParts(t *testing.T) {
	k := recordertest.NewKeys(t)
	dir := t.TempDir()
	const id = "0123456789abcdef"
	for _, name := range []string{id + ".sgrec", id + ".1.sgrec"} {
		cfg := recordertest.Config(k, recordertest.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)))
		cfg.SessionID = id
		w, err := recorder.Create(filepath.Join(dir, name), cfg)
		if err != nil {
			t.Fatal(err)
		}
		w.Output([]byte("part\r\n"))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	code, out, _ := runTestCLI(t, "verify", filepath.Join(dir, id+".sgrec"))
	if code != 0 || !strings.Contains(out, "recorded in 2 files here: "+id+".sgrec, "+id+".1.sgrec") {
		t.Errorf("verify of the first part: exit %d:\n%s", code, out)
	}
	// With the middle part gone, the last one says what is missing.
	os.Rename(filepath.Join(dir, id+".1.sgrec"), filepath.Join(dir, id+".2.sgrec"))
	if _, out, _ := runTestCLI(t, "verify", filepath.Join(dir, id+".2.sgrec")); !strings.Contains(out, "missing:    "+id+".1.sgrec") {
		t.Errorf("verify with a part missing:\n%s", out)
	}
	junk := filepath.Join(dir, "junk.sgrec")
	os.WriteFile(junk, []byte("hello"), 0o600)
	if _, _, stderr := runTestCLI(t, "verify", junk); !strings.Contains(stderr, junk+": ") {
		t.Errorf("verify of a file that is not a recording does not name it: %q", stderr)
	}
}
