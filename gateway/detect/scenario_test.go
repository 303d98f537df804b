package detect_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"supportgate/gateway/audit"
	"supportgate/gateway/detect"
	"supportgate/gateway/detect/scenario"
)

var update = flag.Bool("update", false, "rewrite testdata/detect from the generator")

var fixedNow = func() time.Time { return time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC) }

// replay runs a fresh detector over records and returns its alerts.
func replay(t testing.TB, recs []audit.Record, cfg detect.Config) []detect.Alert {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = fixedNow
	}
	d, err := detect.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	for _, r := range recs {
		if err := d.ObserveWait(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return d.Alerts()
}

// TestDetectionRates reports recall per attack kind and false alerts per
// agent-week over several generated scenarios, and holds the targets:
// every attack kind caught, at most one false alert per agent-week.
func TestDetectionRates(t *testing.T) {
	seeds := uint64(8)
	if testing.Short() {
		seeds = 2
	}
	var total scenario.Score
	for seed := uint64(1); seed <= seeds; seed++ {
		// Recall on the log with attacks; false alerts on the same normal
		// traffic without them (the generator draws attacks last, so the
		// normal traffic is identical).
		cfg := scenario.Config{Seed: seed, Agents: 8, Weeks: 6, Attacks: true}
		sc := scenario.Generate(cfg)
		s := scenario.Evaluate(sc.Labels, replay(t, sc.Records, detect.Config{}))
		cfg.Attacks = false
		normal := scenario.Generate(cfg)
		fp := scenario.Evaluate(normal.Labels, replay(t, normal.Records, detect.Config{}))
		s.False, s.ByAgentWeek = fp.False, fp.ByAgentWeek
		for _, a := range s.False {
			t.Logf("seed %d false: %s %s", seed, a.Agent, a)
		}
		for _, m := range s.Missed {
			t.Logf("seed %d missed: %+v", seed, m)
		}
		total.Add(s)
	}
	var buf bytes.Buffer
	total.Report(&buf)
	t.Logf("%d seeds × 8 agents × 6 weeks:\n%s", seeds, buf.String())

	// Subtle attacks, near the thresholds: reported, not held to a target.
	var subtle scenario.Score
	for seed := uint64(1); seed <= 4; seed++ {
		sc := scenario.Generate(scenario.Config{Seed: seed, Agents: 8, Weeks: 6, Attacks: true, Subtle: true})
		s := scenario.Evaluate(sc.Labels, replay(t, sc.Records, detect.Config{}))
		s.False, s.ByAgentWeek, s.AgentWeeks = nil, nil, 0
		subtle.Add(s)
	}
	buf.Reset()
	subtle.Report(&buf)
	t.Logf("subtle attacks, 4 seeds (false alerts: see above):\n%s", buf.String())
	for _, k := range scenario.Kinds {
		if got := total.Recall(k); got < 1 {
			t.Errorf("recall of %s: got %.2f, want 1", k, got)
		}
	}
	if got := total.FalsePerAgentWeek(); got > 1 {
		t.Errorf("false alerts per agent-week: got %.2f, want ≤ 1", got)
	}
}

// TestScenarioFiles checks that testdata/detect is what the generator makes
// from its seed, and that the detector meets the targets on it.
func TestScenarioFiles(t *testing.T) {
	sc := scenario.Generate(scenario.DefaultFiles)
	var log, labels bytes.Buffer
	if err := sc.WriteJSONL(&log); err != nil {
		t.Fatal(err)
	}
	if err := sc.WriteLabels(&labels); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("..", "..", "testdata", "detect")
	logPath, labPath := filepath.Join(dir, "scenario.jsonl"), filepath.Join(dir, "scenario.labels.json")
	if *update {
		if err := os.WriteFile(logPath, log.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(labPath, labels.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []struct {
		path string
		want []byte
	}{{logPath, log.Bytes()}, {labPath, labels.Bytes()}} {
		got, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, f.want) {
			t.Errorf("%s differs from the generator's output; run go test ./gateway/detect -run TestScenarioFiles -update", f.path)
		}
	}
	// Read back through the export parser, as `detect replay` does.
	var recs []audit.Record
	fh, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if err := audit.ReadJSONL(fh, func(r audit.Record) error { recs = append(recs, r); return nil }); err != nil {
		t.Fatal(err)
	}
	lf, err := os.Open(labPath)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	lab, err := scenario.ReadLabels(lf)
	if err != nil {
		t.Fatal(err)
	}
	s := scenario.Evaluate(lab, replay(t, recs, detect.Config{}))
	var buf bytes.Buffer
	s.Report(&buf)
	t.Logf("testdata/detect/scenario.jsonl:\n%s", buf.String())
	if len(s.Missed) > 0 {
		t.Errorf("missed attacks: %+v", s.Missed)
	}
	if got := s.FalsePerAgentWeek(); got > 1 {
		t.Errorf("false alerts per agent-week: got %.2f, want ≤ 1", got)
	}
}
