package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestHelpUsageNamesEveryFlag checks that each command's usage line names
// every flag its --help lists below it, and that no flag's help shows a
// default twice: `serve --help` left out --ssh-addr and --wg-addr, and
// `admin user add --help` --display-name and --team.
func TestHelpUsageNamesEveryFlag(t *testing.T) {
	flagRE := regexp.MustCompile(`(?m)^  -([a-z][a-z0-9-]*)`)
	for _, cmd := range [][]string{
		{"serve"}, {"login"}, {"admin", "user", "add"},
		{"session", "new"}, {"session", "list"}, {"session", "show"}, {"session", "revoke"}, {"session", "extend"},
		{"audit", "verify"}, {"audit", "export"},
		{"verify"}, {"export"}, {"replay"}, {"review"},
	} {
		code, out, _ := runTestCLI(t, append(cmd, "--help")...)
		if code != 0 {
			t.Errorf("%v --help: exit %d", cmd, code)
			continue
		}
		usage, _, _ := strings.Cut(out, "\n")
		for _, m := range flagRE.FindAllStringSubmatch(out, -1) {
			name := "--" + m[1]
			if len(m[1]) == 1 {
				name = "-" + m[1] // -o
			}
			if !regexp.MustCompile(`[ \[]` + regexp.QuoteMeta(name) + `([ \]]|$)`).MatchString(usage) {
				t.Errorf("%v --help: the usage line %q does not name --%s", cmd, usage, m[1])
			}
		}
		if regexp.MustCompile(`\(default[^)]*\) \(default`).MatchString(out) {
			t.Errorf("%v --help shows a default twice:\n%s", cmd, out)
		}
	}
}

// TestUserAddSaysWhereTheTokenGoes checks that `admin user add` without a
// password says what to do with the enrollment token, as `admin user
// reenroll` does: before, it printed the bare token.
func TestUserAddSaysWhereTheTokenGoes(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := runTestCLI(t, "admin", "user", "add", "--data", dir, "--name", "erin", "--role", "agent")
	if code != 0 {
		t.Fatalf("admin user add: exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "/enroll/") || !strings.Contains(out, "valid 24h0m0s") {
		t.Errorf("admin user add printed %q; want how long the token is valid and the link it goes in", out)
	}
}
