package bastion_test

import (
	"strings"
	"testing"
	"time"
)

// TestExecCommandRedacted: a command line goes to the audit log, which is
// not encrypted, and to the recording's events; a card number in it is
// redacted in both, as the terminal output of the same command is.
func TestExecCommandRedacted(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.addUser("alice", "agent", "t1")
	s := e.newSession("alice", "shell", 30*time.Minute)
	const card, masked = "4111 1111 1111 1111", "**** **** **** 1111"
	if out, errOut, err := e.run(e.certFor("alice"), s.ID, nil, "echo paid with "+card); err != nil || !strings.Contains(out, "paid with") {
		t.Fatalf("exec: %q %v (stderr %q)", out, err, errOut)
	}
	evs := e.auditEvents("shell.command")
	if len(evs) != 1 || !strings.Contains(evs[0].Detail["command"], masked) || strings.Contains(evs[0].Detail["command"], card) {
		t.Fatalf("shell.command in the audit log: %+v, want the card masked", evs)
	}

	js := e.recordingJSONL(t, s)
	if strings.Contains(js, card) || strings.Contains(js, "4111111111111111") {
		t.Errorf("the card number is in the recording:\n%s", js)
	}
	if !strings.Contains(js, "ssh.exec") || !strings.Contains(js, masked) {
		t.Errorf("the recording lacks the masked ssh.exec event:\n%s", js)
	}
}
