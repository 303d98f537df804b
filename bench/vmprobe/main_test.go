package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestRunPrintsSamplesAndSpread(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out, 300*time.Millisecond, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	// A heading, three samples, two spreads.
	if len(lines) != 6 {
		t.Fatalf("got %d lines, want 6:\n%s", len(lines), out.String())
	}
	row := regexp.MustCompile(`^\s+\d+\.\d\s+[1-9]\d*\s+\d+\.\d\d$`)
	for _, l := range lines[1:4] {
		if !row.MatchString(l) {
			t.Errorf("sample line %q", l)
		}
	}
	for i, want := range []string{"single MB/s: min ", "pair x:      min "} {
		if !strings.HasPrefix(lines[4+i], want) || !strings.HasSuffix(lines[4+i], "(3 samples)") {
			t.Errorf("spread line %q", lines[4+i])
		}
	}
}

func TestRunRefusesBadInterval(t *testing.T) {
	for _, c := range []struct{ d, i time.Duration }{{time.Second, 0}, {time.Second, 2 * time.Second}} {
		if err := run(&bytes.Buffer{}, c.d, c.i); err == nil {
			t.Errorf("run(%v, %v): no error", c.d, c.i)
		}
	}
}
