package bastion_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"supportgate/recorder"
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

	if err := s.consent.Revoke(context.Background()); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(e.recDir, s.ID+".sgrec")
	if !waitFor(5*time.Second, func() bool { r, err := recorder.VerifyFile(path); return err == nil && r.Complete }) {
		t.Fatal("the recording never closed")
	}
	r, err := recorder.OpenFile(path, e.ident)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var js strings.Builder
	if err := recorder.ExportJSONL(&js, r, recorder.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(js.String(), card) || strings.Contains(js.String(), "4111111111111111") {
		t.Errorf("the card number is in the recording:\n%s", js.String())
	}
	if !strings.Contains(js.String(), "ssh.exec") || !strings.Contains(js.String(), masked) {
		t.Errorf("the recording lacks the masked ssh.exec event:\n%s", js.String())
	}
}
