package bastion_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"supportgate/gateway"
	"supportgate/recorder"
	"supportgate/session"
)

// TestNothingPassesUnrecorded: when the session's recording reaches its
// size cap (a full disk or a failing file behaves the same), output stops
// reaching the agent and the gateway ends the session; everything the
// agent did receive is in the recording.
func TestNothingPassesUnrecorded(t *testing.T) {
	e := newEnv(t, envOptions{recording: gateway.RecordingConfig{MaxBytes: 256 << 10}})
	e.addUser("alice", "agent", "t1")
	s := e.newSession("alice", "shell", 30*time.Minute)

	const marker = "UNRECORDED-42"
	out, _, _ := e.run(e.certFor("alice"), s.ID, nil,
		"head -c 600000 /dev/zero | tr '\\0' y; echo; echo UNRECORDED-$((6*7))")
	if strings.Contains(out, marker) || len(out) >= 600000 {
		t.Errorf("the agent received %d bytes and the marker: output went on past the recording's cap", len(out))
	}

	ctx := context.Background()
	var got *session.Session
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var err error
		if got, err = e.g.Broker().Get(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
		if got.State == session.Ended {
			break
		}
	}
	if got.State != session.Ended || got.EndedBy != "recorder" {
		t.Fatalf("session: %s, ended by %q; want ended by the recorder", got.State, got.EndedBy)
	}

	// Everything relayed is recorded: the output in the recording holds
	// at least what the agent received.
	time.Sleep(time.Second) // the recording closes when the session's context ends
	r, err := recorder.OpenFile(filepath.Join(e.recDir, s.ID+".sgrec"), e.ident)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var cast strings.Builder
	if err := recorder.ExportAsciicast(&cast, r, recorder.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(cast.String(), "y"); n < strings.Count(out, "y") {
		t.Errorf("the agent received %d bytes of output, the recording holds %d", strings.Count(out, "y"), n)
	}
}
