// Package reviewtest writes the recordings the review player's tests and
// benchmarks load: a shell session with commands at known times and a
// screen share with real VP8 frames, each through the real recorder.Writer.
package reviewtest

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"supportgate/internal/realpeer"
	"supportgate/recorder"
	"supportgate/recorder/recordertest"
)

// Start is the wall-clock start of every fixture recording.
var Start = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)

// Shell describes the shell fixture: a command every Step, its output a
// moment later, and at Middle the command MiddleCommand printing
// MiddleOutput.
type Shell struct {
	Length        time.Duration
	Step          time.Duration
	Middle        time.Duration
	MiddleCommand string
	MiddleOutput  string
	CardInChat    string // sent in chat at a quarter of the length; redacted by the recorder
}

// DefaultShell is a two-minute session.
var DefaultShell = Shell{
	Length:        2 * time.Minute,
	Step:          5 * time.Second,
	Middle:        time.Minute,
	MiddleCommand: "cat /etc/motd-of-the-middle",
	MiddleOutput:  "THE-MIDDLE-OUTPUT",
	CardInChat:    "4111 1111 1111 1111",
}

// StepOutput is what the command of step n prints.
func StepOutput(n int) string { return fmt.Sprintf("step-%03d-done", n) }

// StepAt is when the output of step n appears.
func (s Shell) StepAt(n int) time.Duration { return time.Duration(n)*s.Step + 500*time.Millisecond }

// MiddleAt is when the middle command's output appears.
func (s Shell) MiddleAt() time.Duration { return s.Middle + 700*time.Millisecond }

// config returns a writer configuration with a manual clock.
func config(k recordertest.Keys, id string) (recorder.WriterConfig, *recordertest.Clock) {
	c := recordertest.NewClock(Start)
	cfg := recordertest.Config(k, c)
	cfg.RecordingID, cfg.SessionID = id, id
	return cfg, c
}

func info(w *recorder.Writer, id, agent, customer, scopes string) {
	w.Event("session.info", map[string]string{
		"session": id, "agent": agent, "customer": customer, "scopes": scopes,
		"approved_at": Start.Format(time.RFC3339), "expires_at": Start.Add(time.Hour).Format(time.RFC3339),
	})
}

// WriteShell writes the shell fixture as session id to path.
func WriteShell(t testing.TB, path, id string, k recordertest.Keys, s Shell) {
	t.Helper()
	cfg, clk := config(k, id)
	w, err := recorder.Create(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	info(w, id, "alice", "Acme Router Co", "shell,tunnel:80")
	w.Resize(100, 30)
	w.Event("ssh.shell", map[string]string{"agent": "alice"})
	w.Output([]byte("\x1b[1;32mcustomer@router\x1b[0m:~$ "))
	at := time.Duration(0)
	advance := func(to time.Duration) {
		if to > at {
			clk.Advance(to - at)
			at = to
		}
	}
	chatDone := false
	for n := 1; time.Duration(n)*s.Step < s.Length; n++ {
		cmdAt := time.Duration(n) * s.Step
		if !chatDone && cmdAt >= s.Length/4 && s.CardInChat != "" {
			advance(cmdAt - time.Second)
			w.Chat("customer", "my card is "+s.CardInChat+", can you check the billing page?")
			w.Chat("alice", "thanks, never send card numbers in chat")
			chatDone = true
		}
		if s.MiddleCommand != "" && cmdAt == s.Middle {
			advance(cmdAt)
			w.Output([]byte(s.MiddleCommand + "\r\n"))
			advance(s.MiddleAt())
			w.Output([]byte(s.MiddleOutput + "\r\n\x1b[1;32mcustomer@router\x1b[0m:~$ "))
			continue
		}
		advance(cmdAt)
		w.Output([]byte(fmt.Sprintf("echo %s\r\n", StepOutput(n))))
		advance(s.StepAt(n))
		w.Output([]byte(StepOutput(n) + "\r\n\x1b[1;32mcustomer@router\x1b[0m:~$ "))
	}
	advance(s.Length)
	w.Event("session.ended", map[string]string{"reason": "expired"})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// Frame is one VP8 frame.
type Frame struct {
	Data []byte
	Key  bool
	PTS  int64 // in the IVF time base
}

// VP8 returns frames of ffmpeg's test pattern encoded as VP8 by the real
// ffmpeg (libvpx): seconds long at fps, 320x240.
func VP8(t testing.TB, seconds, fps int) []Frame {
	t.Helper()
	ffmpeg := realpeer.Require(t, "ffmpeg")
	out := filepath.Join(t.TempDir(), "pattern.ivf")
	cmd := exec.Command(ffmpeg, "-v", "error", "-f", "lavfi", "-i", fmt.Sprintf("testsrc=size=320x240:rate=%d", fps),
		"-t", fmt.Sprint(seconds), "-c:v", "libvpx", "-g", fmt.Sprint(fps), "-b:v", "300k", "-f", "ivf", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 32 || string(b[:4]) != "DKIF" {
		t.Fatal("ffmpeg wrote no IVF")
	}
	var frames []Frame
	for p := int(binary.LittleEndian.Uint16(b[6:])); p+12 <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[p:]))
		pts := int64(binary.LittleEndian.Uint64(b[p+4:]))
		p += 12
		if p+n > len(b) {
			break
		}
		f := b[p : p+n]
		frames = append(frames, Frame{Data: f, Key: len(f) > 0 && f[0]&1 == 0, PTS: pts})
		p += n
	}
	return frames
}

// WriteScreen writes a screen-share session with frames at fps as session
// id to path, with a chat in the middle.
func WriteScreen(t testing.TB, path, id string, k recordertest.Keys, frames []Frame, fps int) {
	t.Helper()
	cfg, clk := config(k, id)
	w, err := recorder.Create(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	info(w, id, "bob", "Jane Customer", "view,chat")
	w.Event("participant.joined", map[string]string{"name": "bob", "role": "agent"})
	w.Event("screen.share.started", map[string]string{"by": "customer"})
	step := time.Second / time.Duration(fps)
	for i, f := range frames {
		if i == len(frames)/2 {
			w.Chat("bob", "I can see the settings page now")
		}
		if err := w.Media("vp8", time.Duration(i)*step, f.Data, f.Key); err != nil {
			t.Fatal(err)
		}
		clk.Advance(step)
	}
	w.Event("screen.share.stopped", nil)
	w.Event("session.ended", map[string]string{"reason": "revoked"})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}
