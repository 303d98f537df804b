package main

import (
	"strings"
	"testing"
)

// TestE2EOperatorSurprises covers what an operator following the README's
// quick start ran into: each subtest failed before its fix.
func TestE2EOperatorSurprises(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	g := newGW(t, `{"min_duration": "1s"}`)
	g.user("alice", "agent")

	t.Run("audit verify refuses what it does not use", func(t *testing.T) {
		// -o was listed in `audit verify --help` and taken, and no file was
		// written; a data directory given without --data verified ./data.
		for _, args := range [][]string{
			{"audit", "verify", "--data", g.data, "-o", t.TempDir() + "/verify.out"},
			{"audit", "verify", g.data},
			{"audit", "export", g.data},
		} {
			_, errs, code := g.run("", "", args...)
			if code != 2 || !strings.HasPrefix(errs, "supportgate: ") || strings.Count(errs, "\n") != 1 {
				t.Errorf("%v: exit %d, stderr %q; want a one-line usage error, exit 2", args, code, errs)
			}
		}
		if help, _, _ := g.run("", "", "audit", "verify", "--help"); strings.Contains(help, "-o") {
			t.Errorf("audit verify --help lists -o:\n%s", help)
		}
		if help, _, _ := g.run("", "", "audit", "export", "--help"); !strings.Contains(help, "-o") {
			t.Errorf("audit export --help lacks -o:\n%s", help)
		}
	})
}
