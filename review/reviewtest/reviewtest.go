// Package reviewtest writes the recordings the review player's tests and
// benchmarks load: a shell session with commands at known times and a
// screen share with real VP8 frames, each through the real recorder.Writer.
package reviewtest

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// Frame is one video frame: VP8, or H.264 when Codec says so.
type Frame struct {
	Data  []byte
	Key   bool
	PTS   int64  // in the IVF time base
	Codec string // "vp8" when empty
}

// H264 returns frames of ffmpeg's test pattern encoded as H.264 (libx264,
// baseline, Annex B access units): seconds long at fps, 320x240.
func H264(t testing.TB, seconds, fps int) []Frame {
	t.Helper()
	var frames []Frame
	for i, au := range recordertest.H264(t, "320x240", fps, seconds*fps, fps, "baseline") {
		frames = append(frames, Frame{Data: au, Key: recordertest.HasIDR(au), PTS: int64(i), Codec: "h264"})
	}
	return frames
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
		if err := w.Media(cmp.Or(f.Codec, "vp8"), time.Duration(i)*step, f.Data, f.Key); err != nil {
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

// WriteLong writes a long shell session as session id to path: length of
// working time with about totalBytes of terminal output, as an agent's hour
// at a customer's server looks. The terminal is resized to 120x40 at the
// start and shows a banner and a prompt; then, over and over, a command is
// typed one character at a time (each echoed character its own record),
// prints for a while and the agent reads for a few seconds. Commands
// follow logs (timestamps, colored levels, now and then a card number the
// recorder redacts), list directories, install packages with progress bars
// redrawn by CR and erase-line, or run top on the alternate screen,
// redrawn with cursor addressing every two seconds. Output arrives in
// writes of at most 4 KiB cut anywhere, as a PTY delivers it. Keyframes
// and checkpoints come from the writer's default checkpoint interval. The
// session is the same for the same arguments. It returns the terminal
// output bytes written.
func WriteLong(t testing.TB, path, id string, k recordertest.Keys, length time.Duration, totalBytes int64) int64 {
	t.Helper()
	cfg, clk := config(k, id)
	w, err := recorder.Create(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := &long{w: w, clk: clk, rng: rand.New(rand.NewPCG(8, 8))}
	info(w, id, "alice", "Acme Router Co", "shell")
	w.Resize(120, 40)
	w.Event("ssh.shell", map[string]string{"agent": "alice"})
	l.out([]byte("Linux router-7 6.1.0-28-amd64 #1 SMP Debian 6.1.119-1 x86_64\r\n\r\n" +
		"The programs included with the Debian GNU/Linux system are free software.\r\n" +
		"Last login: Sun Nov 29 17:02:11 2026 from 10.8.0.2\r\n" + prompt))

	// The plan first, so the output rate can spread totalBytes over the
	// time the commands print.
	type step struct {
		cmd       longCommand
		keys      []time.Duration // before each typed character, then Enter
		printFor  time.Duration
		readAfter time.Duration
	}
	var plan []step
	var printing time.Duration // of commands printing at the output rate
	for at := time.Duration(0); at < length; {
		s := step{cmd: longCommands[l.rng.IntN(len(longCommands))]}
		typed := at
		for range len(s.cmd.line) + 1 {
			s.keys = append(s.keys, time.Duration(40+l.rng.IntN(260))*time.Millisecond)
			typed += s.keys[len(s.keys)-1]
		}
		if typed >= length {
			break
		}
		at = typed
		s.printFor = min(time.Duration(3+l.rng.IntN(58))*time.Second, max(length-at, 0))
		s.readAfter = min(time.Duration(2+l.rng.IntN(14))*time.Second, max(length-at-s.printFor, 0))
		at += s.printFor + s.readAfter
		if !s.cmd.top {
			printing += s.printFor
		}
		plan = append(plan, s)
	}
	rate := float64(totalBytes) / printing.Seconds()
	var printed time.Duration
	for _, s := range plan {
		c := s.cmd
		for i, ch := range []byte(c.line + "\r") {
			l.advance(s.keys[i])
			if ch == '\r' {
				l.out([]byte("\r\n"))
			} else {
				l.out([]byte{ch})
			}
		}
		if c.top {
			l.out(append([]byte("\x1b[?1049h\x1b[H\x1b[2J"), l.topScreen()...))
		}
		for el := time.Duration(0); el < s.printFor; {
			tick := min(time.Duration(50+l.rng.IntN(150))*time.Millisecond, s.printFor-el)
			l.advance(tick)
			el += tick
			if c.top {
				if el%(2*time.Second) < tick {
					l.out(l.topScreen())
				}
				continue
			}
			want := int64(rate * (printed + el).Seconds())
			for l.written < want {
				l.out(l.lines(c, int(min(want-l.written, 4096))))
			}
		}
		if c.top {
			l.out([]byte("\x1b[?1049l"))
		} else {
			printed += s.printFor
			l.pending = l.pending[:0] // the rest of a line: ^C
			l.out([]byte("^C\r\n"))
		}
		l.out([]byte(prompt))
		l.advance(s.readAfter)
	}
	if l.at < length {
		l.advance(length - l.at)
	}
	w.Event("session.ended", map[string]string{"reason": "expired"})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return l.written
}

const prompt = "\x1b[1;32mroot@router-7\x1b[0m:\x1b[1;34m~\x1b[0m# "

// longCommand is one command of the long session.
type longCommand struct {
	line string
	kind int // what it prints: 0 log lines, 1 directory listing, 2 package installs
	top  bool
}

var longCommands = []longCommand{
	{line: "tail -f /var/log/app/api.log"},
	{line: "journalctl -fu nginx"},
	{line: "kubectl logs -f deploy/billing --since=1h"},
	{line: "ls -la --color=auto /var/lib/app/uploads", kind: 1},
	{line: "find /srv -name '*.conf' -newer /etc/hosts -ls", kind: 1},
	{line: "apt-get -y upgrade", kind: 2},
	{line: "pip install -r requirements.txt", kind: 2},
	{line: "top", top: true},
}

// long is the state of WriteLong.
type long struct {
	w       *recorder.Writer
	clk     *recordertest.Clock
	rng     *rand.Rand
	at      time.Duration
	written int64
	pending []byte // generated output not yet written
	n       int    // lines generated
}

func (l *long) advance(d time.Duration) {
	l.clk.Advance(d)
	l.at += d
}

func (l *long) out(p []byte) {
	if err := l.w.Output(p); err != nil {
		panic(err) // the writer has no cap here and writes to a temp file
	}
	l.written += int64(len(p))
}

// lines returns the next n bytes of c's output, cut anywhere.
func (l *long) lines(c longCommand, n int) []byte {
	for len(l.pending) < n {
		l.pending = l.line(l.pending, c)
	}
	p := append([]byte(nil), l.pending[:n]...)
	l.pending = append(l.pending[:0], l.pending[n:]...)
	return p
}

var levels = []string{"\x1b[32mINFO\x1b[0m ", "\x1b[32mINFO\x1b[0m ", "\x1b[32mINFO\x1b[0m ", "\x1b[36mDEBUG\x1b[0m", "\x1b[33mWARN\x1b[0m ", "\x1b[1;31mERROR\x1b[0m"}

// line appends one line of c's output.
func (l *long) line(b []byte, c longCommand) []byte {
	l.n++
	r := l.rng
	now := Start.Add(l.at)
	switch c.kind {
	case 1:
		dir := r.IntN(5) == 0
		mode, name := "-rw-r--r--", fmt.Sprintf("upload-%06d.%s", r.IntN(1000000), []string{"pdf", "png", "csv", "json"}[r.IntN(4)])
		if dir {
			mode, name = "drwxr-xr-x", fmt.Sprintf("\x1b[01;34mbatch-%04d\x1b[0m", r.IntN(10000))
		}
		return fmt.Appendf(b, "%s %2d www-data www-data %9d %s %s\r\n", mode, 1+r.IntN(4), r.IntN(50000000), now.Format("Jan _2 15:04"), name)
	case 2:
		pkg := fmt.Sprintf("lib%s%d", []string{"ssl", "curl", "xml", "yaml", "png", "z"}[r.IntN(6)], r.IntN(40))
		b = fmt.Appendf(b, "Get:%d http://deb.debian.org/debian bookworm/main amd64 %s amd64 %d.%d.%d-%d [%d kB]\r\n",
			l.n, pkg, r.IntN(4), r.IntN(20), r.IntN(30), r.IntN(5), 20+r.IntN(4000))
		for p := 0; p <= 100; p += 10 + r.IntN(30) {
			b = fmt.Appendf(b, "\r\x1b[K%3d%% [%-40s] %d kB/s", p, strings.Repeat("#", p*40/100), 100+r.IntN(9000))
		}
		return append(b, "\r\x1b[K"...)
	}
	if l.n%5000 == 0 {
		return fmt.Appendf(b, "%s %s billing: charge accepted card=4111 1111 1111 1111 amount=%d.%02d EUR\r\n",
			now.Format("2006-01-02T15:04:05.000Z"), levels[0], r.IntN(500), r.IntN(100))
	}
	return fmt.Appendf(b, "%s %s api: request handled method=%s path=/api/v1/items/%d status=%d took=%dms req=%016x\r\n",
		now.Format("2006-01-02T15:04:05.000Z"), levels[r.IntN(len(levels))], []string{"GET", "GET", "POST", "PUT", "DELETE"}[r.IntN(5)],
		r.IntN(100000), []int{200, 200, 200, 201, 204, 404, 500}[r.IntN(7)], r.IntN(900), r.Uint64())
}

// topScreen returns one redraw of top on a 120x40 screen.
func (l *long) topScreen() []byte {
	r := l.rng
	now := Start.Add(l.at)
	b := fmt.Appendf(nil, "\x1b[H\x1b[1mtop - %s up 41 days,  3:12,  1 user,  load average: %d.%02d, %d.%02d, %d.%02d\x1b[0m\x1b[K\r\n",
		now.Format("15:04:05"), r.IntN(4), r.IntN(100), r.IntN(4), r.IntN(100), r.IntN(4), r.IntN(100))
	b = fmt.Appendf(b, "Tasks: \x1b[1m%d\x1b[0m total,   \x1b[1m%d\x1b[0m running\x1b[K\r\n", 180+r.IntN(40), 1+r.IntN(4))
	b = fmt.Appendf(b, "%%Cpu(s): \x1b[1m%4.1f\x1b[0m us, \x1b[1m%4.1f\x1b[0m sy\x1b[K\r\n", r.Float64()*60, r.Float64()*20)
	b = fmt.Appendf(b, "MiB Mem : \x1b[1m%d\x1b[0m total, \x1b[1m%d\x1b[0m free\x1b[K\r\n\x1b[K\r\n", 16000, 1000+r.IntN(8000))
	b = append(b, "\x1b[7m    PID USER      PR  NI    VIRT    RES    SHR S  %CPU  %MEM     TIME+ COMMAND                                       \x1b[0m\r\n"...)
	for i := 0; i < 33; i++ {
		b = fmt.Appendf(b, "\x1b[%d;1H %6d %-8s  20   0 %7d %6d %6d %s %5.1f %5.1f %3d:%02d.%02d %-20s\x1b[K",
			7+i, 100+r.IntN(30000), []string{"root", "www-data", "postgres", "app"}[r.IntN(4)], r.IntN(3000000), r.IntN(900000), r.IntN(90000),
			[]string{"S", "S", "R", "I"}[r.IntN(4)], r.Float64()*30, r.Float64()*10, r.IntN(200), r.IntN(60), r.IntN(100),
			[]string{"nginx", "postgres", "python3", "java", "kworker/0:1", "systemd", "sshd"}[r.IntN(7)])
	}
	return b
}
