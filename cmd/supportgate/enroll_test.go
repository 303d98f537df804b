package main

import (
	"regexp"
	"testing"
)

// TestE2EEnrollLinkAfterUsers: the operator restarts serve before the
// first admin enrolled, after adding an agent as the README's next step
// says. serve prints a new link (the old one void); it used to print
// nothing once any other user existed.
func TestE2EEnrollLinkAfterUsers(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	g := newGW(t, e2ePolicy)
	link := regexp.MustCompile(`one-time admin enrollment link \(valid [^)]*\): (\S+)`)
	first := link.FindStringSubmatch(g.stderr.String())
	if first == nil {
		t.Fatalf("first run printed no enrollment link:\n%s", g.stderr.String())
	}
	g.mustRun("", password+"\n", "admin", "user", "add", "--data", g.data, "--name", "alice", "--role", "agent",
		"--password-stdin", "--totp-secret-file", t.TempDir()+"/alice.totp")
	g.kill()
	g.start()
	again := link.FindStringSubmatch(g.stderr.String())
	if again == nil || again[1] == first[1] {
		t.Fatalf("after a restart with another user: link %v (first %s):\n%s", again, first[1], g.stderr.String())
	}
}
