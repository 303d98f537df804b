// Package realpeer finds the real third-party programs that tests drive
// (oathtool, age, ssh, ffmpeg, chromium, ...). Outside CI a missing program
// skips the test with the install hint; under CI=true it fails the test, so a
// green CI run never hides a missing install step.
package realpeer

import (
	"os"
	"os/exec"
	"testing"
)

// Require returns the path of the named program, or ends the test: skipped
// on a developer machine, failed in CI.
func Require(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := name + " is not installed; run `make deps` (apt-get installs it)"
	if InCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// InCI reports whether the tests run under CI (CI=true), where missing peers
// are failures rather than skips.
func InCI() bool {
	v := os.Getenv("CI")
	return v == "true" || v == "1"
}
