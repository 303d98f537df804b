package gateway_test

import (
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"supportgate/gateway"
	"supportgate/gateway/identity"
	"supportgate/recorder"
	"supportgate/session"
)

// TestRecordingConfig: the gateway's recordings take the configured
// redaction patterns and input recording, and a session whose recording
// reaches its size cap is ended by the recorder, with the reason audited.
func TestRecordingConfig(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, func(c *gateway.Config) {
		c.Recipients = []age.Recipient{id.Recipient()}
		c.Recording = gateway.RecordingConfig{
			Redact:      recorder.RedactConfig{Patterns: []*regexp.Regexp{regexp.MustCompile(`ticket-[0-9]+`)}},
			RecordInput: true,
			MaxBytes:    1 << 20,
		}
	})
	alice := e.addUser("alice", identity.RoleAgent, "red")
	s := e.approved(alice)
	w, err := e.g.Recording(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	w.Input([]byte("whoami\r"))
	w.Output([]byte("see ticket-4711\r\n"))
	w.Flush()

	// Past the 1 MiB cap the session ends.
	chunk := []byte(strings.Repeat("x", 4096))
	var capErr error
	for range 400 {
		if capErr = w.Output(chunk); capErr != nil {
			break
		}
	}
	if !errors.Is(capErr, recorder.ErrSizeCap) {
		t.Fatalf("writing 1.6 MB into a 1 MiB recording: %v, want ErrSizeCap", capErr)
	}
	var state, reason string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if state, reason = e.sessionState(alice, s.ID); state == string(session.Ended) {
			break
		}
	}
	if state != string(session.Ended) || reason != string(session.EndRevoked) {
		t.Fatalf("session after its recording's cap: %s/%s, want ended/revoked", state, reason)
	}
	evs := e.auditOf("recording.failed")
	if len(evs) != 1 || evs[0].Session != s.ID || evs[0].Actor != "recorder" ||
		!strings.Contains(evs[0].Detail["error"], "size cap") {
		t.Fatalf("recording.failed events: %+v", evs)
	}
	if ended := e.auditOf("session.ended"); len(ended) != 1 || ended[0].Actor != "recorder" {
		t.Fatalf("session.ended events: %+v", ended)
	}

	// The recording closes when the session ends.
	e.g.Close()
	r, err := recorder.OpenFile(gateway.RecordingPath(e.mat.Dir, s.ID), id)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var input, output strings.Builder
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch rec.Type {
		case recorder.TypeInput:
			input.Write(rec.Data)
		case recorder.TypeOutput:
			output.Write(rec.Data)
		}
	}
	if input.String() != "whoami\r" {
		t.Errorf("recorded input %q, want the keystrokes", input.String())
	}
	if out := output.String(); strings.Contains(out, "ticket-4711") || !strings.HasPrefix(out, "see ") {
		t.Errorf("recorded output starts %q: the configured pattern is not masked", out[:min(len(out), 40)])
	}
}
