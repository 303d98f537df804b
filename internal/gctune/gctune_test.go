package gctune_test

import (
	"os"
	"runtime/debug"
	"testing"

	"supportgate/internal/gctune"
)

func TestApply(t *testing.T) {
	t.Setenv("GOGC", "") // restored after the test
	os.Unsetenv("GOGC")
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)

	restore, got := gctune.Apply()
	if got != gctune.Percent || debug.SetGCPercent(gctune.Percent) != gctune.Percent {
		t.Fatalf("Apply without GOGC: percent %d, want %d in force", got, gctune.Percent)
	}
	restore()
	if p := debug.SetGCPercent(100); p != 100 {
		t.Fatalf("after restore: %d, want 100", p)
	}

	os.Setenv("GOGC", "50")
	restore, got = gctune.Apply()
	defer restore()
	if got != -1 || debug.SetGCPercent(100) != 100 {
		t.Fatalf("Apply with GOGC set: percent %d, want it left alone", got)
	}
}
