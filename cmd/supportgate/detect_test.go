package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateDetect = flag.Bool("update-detect", false, "rewrite testdata/detect-replay.golden")

func runDetectCLI(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	code = runCLI(env, args)
	return out.String(), errb.String(), code
}

// TestDetectReplayGolden replays the committed scenario and scores it.
func TestDetectReplayGolden(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "detect")
	base := filepath.Join(t.TempDir(), "baselines.json")
	stdout, stderr, code := runDetectCLI(t, "", "detect", "replay", filepath.Join(dir, "scenario.jsonl"),
		"--labels", filepath.Join(dir, "scenario.labels.json"), "--save-baselines", base)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	golden := filepath.Join("testdata", "detect-replay.golden")
	if *updateDetect {
		if err := os.WriteFile(golden, []byte(stdout), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if stdout != string(want) {
		t.Errorf("stdout differs from %s (go test ./cmd/supportgate -run TestDetectReplayGolden -update-detect):\n%s", golden, stdout)
	}
	var snap map[string]json.RawMessage
	b, err := os.ReadFile(base)
	if err != nil || json.Unmarshal(b, &snap) != nil || len(snap) != 6 {
		t.Errorf("baseline snapshot: got %d agents, err %v; want 6", len(snap), err)
	}
}

func TestDetectReplayJSONAndErrors(t *testing.T) {
	line := `{"seq":1,"time":"2026-03-04T10:00:00Z","type":"shell.command","actor":"alice","session":"s1","remote":"198.51.100.5","detail":{"agent":"alice","command":"history -c"},"prev":"","hash":""}` + "\n"
	stdout, stderr, code := runDetectCLI(t, line, "detect", "replay", "-", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var a struct{ Kind, Severity, Agent, Raised string }
	if err := json.Unmarshal([]byte(stdout), &a); err != nil || a.Kind != "risky_command" || a.Severity != "high" || a.Agent != "alice" || a.Raised != "2026-03-04T10:00:00Z" {
		t.Errorf("got %q (%v), want one high risky_command for alice raised at the record's time", stdout, err)
	}
	for _, tt := range []struct {
		stdin string
		args  []string
		code  int
		msg   string
	}{
		{"", []string{"detect"}, 2, "usage: supportgate detect replay FILE"},
		{"", []string{"detect", "replay"}, 2, "usage: supportgate detect replay FILE"},
		{"", []string{"detect", "replay", "-", "--min-severity", "bad"}, 2, "unknown severity"},
		{"not json\n", []string{"detect", "replay", "-"}, 1, "detect replay: audit: line 1: not a JSON object"},
		{"", []string{"detect", "replay", "/nonexistent/log"}, 1, "no such file"},
	} {
		_, stderr, code := runDetectCLI(t, tt.stdin, tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.msg) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: got exit %d, stderr %q; want exit %d and one line containing %q", tt.args, code, stderr, tt.code, tt.msg)
		}
	}
}
