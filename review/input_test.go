package review

import (
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"supportgate/agent"
	"supportgate/recorder"
	"supportgate/recorder/recordertest"
)

// recorded writes a recording with write and returns a function that opens
// it for reading (closed with the test).
func recorded(t *testing.T, write func(w *recorder.Writer, clk *recordertest.Clock)) (open func() *recorder.Reader) {
	t.Helper()
	k := recordertest.NewKeys(t)
	clk := recordertest.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	path := filepath.Join(t.TempDir(), "r.sgrec")
	w, err := recorder.Create(path, recordertest.Config(k, clk))
	if err != nil {
		t.Fatal(err)
	}
	write(w, clk)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return func() *recorder.Reader {
		t.Helper()
		r, err := recorder.OpenFile(path, k.Identity)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
}

// TestScanInputAndCommands: what a shell without a terminal was sent (the
// only trace of what it ran) gets a timeline marker per run of input and is
// searchable, and so is a command run with ssh SESSION CMD; the shell's
// marker says it had no terminal. Before, the player showed neither and
// search found neither.
func TestScanInputAndCommands(t *testing.T) {
	open := recorded(t, func(w *recorder.Writer, clk *recordertest.Clock) {
		w.Event("ssh.exec", map[string]string{"agent": "alice", "command": "tar czf - ./secrets | base64", "pty": "no"})
		clk.Advance(time.Second)
		w.Event("ssh.shell", map[string]string{"agent": "alice", "pty": "no"})
		w.Stdin([]byte("rm -f /tmp/customer-file\nchmod 4755 "))
		w.Stdin([]byte("/tmp/x\n"))
		clk.Advance(3 * time.Second) // a pause: the next input is another run
		w.Output([]byte("done\r\n"))
		w.Stdin([]byte("exit\n"))
	})
	s := scan(context.Background(), open(), newTextBudget(1<<20))
	var texts []string
	for _, l := range s.lines {
		texts = append(texts, l.text)
	}
	for _, want := range []string{"alice ran: tar czf - ./secrets | base64", "input: rm -f /tmp/customer-file", "input: chmod 4755 /tmp/x", "input: exit"} {
		if !slices.Contains(texts, want) {
			t.Errorf("search text lacks %q: %q", want, texts)
		}
	}
	var inputs []string
	shell := ""
	for _, m := range s.Markers {
		switch {
		case m.Kind == MarkInput:
			inputs = append(inputs, m.Label)
		case strings.Contains(m.Label, "opened a shell"):
			shell = m.Label
		}
	}
	if want := []string{"input sent: rm -f /tmp/customer-file", "input sent: exit"}; !slices.Equal(inputs, want) {
		t.Errorf("input markers %q, want %q", inputs, want)
	}
	if !strings.Contains(shell, "no terminal") {
		t.Errorf("shell marker %q does not say it had no terminal", shell)
	}
}

// TestEventDetailsAndEndReason: an asciicast marker of an
// event carries its details (asciinema shows markers, not the recording's
// events), and the player's end reason is the gateway's word even when the
// bastion's ssh.session_ended came first.
func TestEventDetailsAndEndReason(t *testing.T) {
	open := recorded(t, func(w *recorder.Writer, _ *recordertest.Clock) {
		w.Event("ssh.exec", map[string]string{"agent": "alice", "command": "tar czf - . | base64"})
		w.Event("ssh.session_ended", map[string]string{"reason": "the customer revoked access"})
		w.Event("session.ended", map[string]string{"reason": "revoked"})
	})
	var cast strings.Builder
	if err := recorder.ExportAsciicast(&cast, open(), recorder.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cast.String(), `event ssh.exec agent=alice command=tar czf - . | base64`) {
		t.Errorf("asciicast markers lack the command:\n%s", cast.String())
	}
	if s := scan(context.Background(), open(), nil); s.EndReason != "revoked" {
		t.Errorf("end reason %q, want the gateway's revoked", s.EndReason)
	}
}

// TestGatewayListParts: listing through the gateway, a session recorded in
// two parts gives its end reason to the last part only (the first ended
// where the gateway stopped). Before, both read "revoked".
func TestGatewayListParts(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"recordings":[{"session_id":"0123456789abcdef","agent":"alice","state":"ended","end_reason":"revoked",
			"approved_at":"2026-03-01T09:00:30Z","size":100,"parts":[{"id":"0123456789abcdef.1","size":50}]}]}`)
	}))
	defer srv.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	c, err := agent.NewClient(srv.URL, ca)
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGateway(c, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	items, err := g.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[0].EndReason != "" || items[1].EndReason != "revoked" || items[1].ID != "0123456789abcdef.1" {
		t.Fatalf("items: %+v", items)
	}
}

// TestKeystrokeRunsOneMarker: keystrokes on a terminal (input recorded by
// configuration) come one record at a time with the echo between: they
// make one run of input, one marker, not one per keystroke, which filled
// the timeline's cap and dropped the end marker.
func TestKeystrokeRunsOneMarker(t *testing.T) {
	open := recorded(t, func(w *recorder.Writer, clk *recordertest.Clock) {
		for _, c := range "echo hello; ls -l /tmp\n" {
			clk.Advance(100 * time.Millisecond)
			w.Stdin([]byte(string(c)))
			w.Output([]byte(string(c)))
		}
		clk.Advance(5 * time.Second)
		w.Stdin([]byte("exit\n"))
		w.Event("session.ended", map[string]string{"reason": "revoked"})
	})
	s := scan(context.Background(), open(), nil)
	var inputs []string
	ended := false
	for _, m := range s.Markers {
		switch m.Kind {
		case MarkInput:
			inputs = append(inputs, m.Label)
		case MarkEnd:
			ended = true
		}
	}
	if len(inputs) != 2 || !ended {
		t.Errorf("input markers %q (want 2: the typed line, then exit after a pause), end marker %v", inputs, ended)
	}
}
