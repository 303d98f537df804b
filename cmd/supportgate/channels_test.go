package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"supportgate/recorder"
	"supportgate/recorder/recordertest"
)

// writeChannelsSample writes a recording of two shells at once, on
// channels 1 and 2, their lines interleaved and each written in two
// pieces, for 40 s.
func writeChannelsSample(t *testing.T) (path, idFile string) {
	t.Helper()
	_, idFile, k := writeCLISample(t)
	clk := recordertest.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	path = filepath.Join(t.TempDir(), "two.sgrec")
	w, err := recorder.Create(path, recordertest.Config(k, clk))
	if err != nil {
		t.Fatal(err)
	}
	w.Event("ssh.shell", map[string]string{"agent": "alice", "channel_id": "1", "pty": "yes"})
	w.ResizeOn(1, 80, 24)
	w.Event("ssh.shell", map[string]string{"agent": "alice", "channel_id": "2", "pty": "yes"})
	w.ResizeOn(2, 100, 30)
	for i := range 40 {
		clk.Advance(time.Second)
		w.OutputOn(1, []byte("first shell "))
		w.OutputOn(2, []byte("second shell "))
		w.OutputOn(1, []byte(strings.Repeat("a", i)+"\r\n"))
		w.OutputOn(2, []byte(strings.Repeat("b", i)+"\r\n"))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path, idFile
}

// TestReplayAndExportChannels: replay and the asciicast export show one
// channel of a recording of two shells at once, by default the first,
// with --channel another; its lines are whole and the other's are not
// there. The export says on stderr which channel it left out.
func TestReplayAndExportChannels(t *testing.T) {
	old := replaySleep
	replaySleep = func(time.Duration, <-chan byte) (byte, bool) { return 0, true }
	t.Cleanup(func() { replaySleep = old })
	path, idFile := writeChannelsSample(t)
	last := map[string]string{
		"1": "first shell " + strings.Repeat("a", 39) + "\r\n",
		"2": "second shell " + strings.Repeat("b", 39) + "\r\n",
	}
	other := map[string]string{"1": "second shell", "2": "first shell"}
	for _, tt := range []struct {
		name string
		args []string
		ch   string
	}{
		{"default", nil, "1"},
		{"channel 2", []string{"--channel", "2"}, "2"},
		{"channel 2 from 30s", []string{"--channel", "2", "--from", "30s"}, "2"},
		{"channel 1 from 30s", []string{"--channel", "1", "--from", "30s"}, "1"},
	} {
		t.Run("replay "+tt.name, func(t *testing.T) {
			code, stdout, stderr := runTestCLI(t, append(append([]string{"replay", "--identity", idFile}, tt.args...), path)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if !strings.Contains(stdout, last[tt.ch]) || strings.Contains(stdout, other[tt.ch]) {
				t.Errorf("got:\n%q\nwant channel %s's lines (%q) and not %q", stdout, tt.ch, last[tt.ch], other[tt.ch])
			}
		})
		if len(tt.args) > 2 {
			continue
		}
		t.Run("export "+tt.name, func(t *testing.T) {
			cast := filepath.Join(t.TempDir(), "out.cast")
			code, _, stderr := runTestCLI(t, append(append([]string{"export", "--identity", idFile, "--format", "asciicast", "-o", cast}, tt.args...), path)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			b, _ := os.ReadFile(cast)
			var text strings.Builder
			for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				var ev []any
				if err := json.Unmarshal([]byte(line), &ev); err != nil && i > 0 {
					t.Fatalf("asciicast line %q: %v", line, err)
				}
				if len(ev) == 3 && ev[1] == "o" {
					text.WriteString(ev[2].(string))
				}
			}
			if !strings.Contains(text.String(), last[tt.ch]) || strings.Contains(text.String(), other[tt.ch]) {
				t.Errorf("got:\n%q\nwant channel %s's lines and not %q", text.String(), tt.ch, other[tt.ch])
			}
			left := map[string]string{"1": "2", "2": "1"}[tt.ch]
			if !strings.Contains(stderr, "exported terminal channel "+tt.ch+"; left out channel "+left) {
				t.Errorf("stderr: got %q, want it to name channel %s as left out", stderr, left)
			}
		})
	}
	code, _, stderr := runTestCLI(t, "export", "--identity", idFile, "--format", "jsonl", "--channel", "2", "-o", filepath.Join(t.TempDir(), "x"), path)
	if code != 2 || !strings.Contains(stderr, "--format asciicast only") {
		t.Errorf("jsonl with --channel: got %d %q, want exit 2", code, stderr)
	}
	code, stdout, _ := runTestCLI(t, "verify", path)
	if code != 0 || !strings.Contains(stdout, "format:     version 3\n") {
		t.Errorf("verify: got %d %q, want version 3 reported", code, stdout)
	}
}
