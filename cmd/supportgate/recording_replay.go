package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"supportgate/recorder"
	"supportgate/recorder/vt"
)

// replaySleep waits d or until a key arrives; it returns the key and
// whether the full time passed. Tests replace it.
var replaySleep = func(d time.Duration, keys <-chan byte) (byte, bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return 0, true
	case k := <-keys:
		return k, false
	}
}

// runReplay implements `supportgate replay --identity KEY FILE`.
func runReplay(env *cliEnv, args []string) error {
	fs := newFlags(env, "replay", "--identity KEY [--speed N] [--from DURATION] [--idle-limit DURATION] [--channel N] FILE")
	idPath := fs.String("identity", "", "age identity file (from age-keygen) of a compliance recipient")
	speed := fs.Float64("speed", 1, "playback speed factor")
	from := fs.Duration("from", 0, "start playback at this offset (e.g. 10m30s)")
	idle := fs.Duration("idle-limit", 2*time.Second, "cap pauses in the recording to this (0: no cap)")
	channel := fs.Int("channel", -1, "the terminal channel to play, -1 for the first terminal channel")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *speed <= 0 {
		return &exitError{code: 2, msg: "replay: exactly one FILE and a positive --speed are required"}
	}
	if *channel < -1 || *channel > recorder.MaxChannel {
		return &exitError{code: 2, msg: "replay: --channel takes a channel number"}
	}
	path := fs.Arg(0)
	r, err := openRecording(*idPath, path)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	defer r.Close()
	total, err := r.Duration()
	if err != nil {
		return fmt.Errorf("replay: %s: %w", path, err)
	}
	// The recorded output goes through vt.Filter: what the customer or the
	// agent printed must not reach the reviewer's clipboard or input.
	ch := *channel
	if ch < 0 {
		ch = r.FirstTerminal()
	}
	p := &player{r: r, ch: ch, out: &vt.Filter{W: env.stdout}, speed: *speed, idle: *idle, total: total, keys: make(chan byte, 8)}
	if isTerminal(env.stderr) {
		p.status = env.stderr
	} else {
		p.notes = env.stderr
	}
	if f, ok := env.stdin.(*os.File); ok && isTerminal(f) {
		stop, err := p.readKeys(f)
		if err == nil {
			defer stop()
		}
	}
	err = p.play(*from)
	p.clearStatus()
	var te *recorder.TamperError
	var ce *recorder.CutShortError
	switch {
	case errors.Is(err, errQuit) || err == nil:
		return nil
	case errors.As(err, &te):
		return &exitError{code: 1, msg: fmt.Sprintf("replay: %s: tampered: %s (playback stopped there)", path, tamperText(te))}
	case errors.As(err, &ce):
		return &exitError{code: 2, msg: fmt.Sprintf("replay: %s: recording cut short after record %d", path, ce.Records)}
	}
	return fmt.Errorf("replay: %w", err)
}

var errQuit = errors.New("quit")

// player plays one terminal channel's output with the recording's timing;
// chat and session events are shown whatever their channel.
type player struct {
	r      *recorder.Reader
	ch     int // the terminal channel played
	out    io.Writer
	status io.Writer // progress line, when stderr is a terminal
	notes  io.Writer // chat and events as lines, when it is not
	speed  float64
	idle   time.Duration
	total  time.Duration
	keys   chan byte // key commands from the terminal

	target   time.Duration // fast-forward until this offset
	prev     time.Duration // recording time of the last played record
	paused   bool
	lastDraw time.Time
	note     string        // the last chat message or event, for the progress line
	noteAt   time.Duration // its recording time
}

const (
	// noteFor is how long, in recording time, a chat message or session
	// event stays on the progress line.
	noteFor = 5 * time.Second
	// noteMax is how many characters of one the progress line shows.
	noteMax = 72
)

const seekStep = 10 * time.Second

// seek jumps to t through the time index and draws the screen keyframe.
func (p *player) seek(t time.Duration) error {
	t = max(0, min(t, p.total))
	kf, err := p.r.SeekChannel(p.ch, t)
	if err != nil {
		return err
	}
	fmt.Fprint(p.out, "\x1b[0m\x1b[H\x1b[2J")
	p.prev = 0
	if kf != nil {
		p.out.Write(kf.Data)
		p.prev = kf.Time
	}
	p.target = t
	return nil
}

func (p *player) play(from time.Duration) error {
	if from > 0 {
		if err := p.seek(from); err != nil {
			return err
		}
	}
	for {
		rec, err := p.r.Next()
		if errors.Is(err, io.EOF) {
			p.drawStatus(p.total, true)
			return nil
		}
		if err != nil {
			return err
		}
		switch rec.Type {
		case recorder.TypeOutput, recorder.TypeInput, recorder.TypeResize:
			if rec.Channel != p.ch {
				continue
			}
		case recorder.TypeChat, recorder.TypeEvent:
		default:
			continue
		}
		if rec.Time > p.target {
			gap := rec.Time - max(p.prev, p.target)
			if p.idle > 0 {
				gap = min(gap, p.idle)
			}
			p.target = 0
			seeked, err := p.wait(time.Duration(float64(gap)/p.speed), rec.Time)
			if err != nil {
				return err
			}
			if seeked {
				continue
			}
		}
		p.prev = rec.Time
		if rec.Type != recorder.TypeOutput {
			p.showNote(rec)
			continue
		}
		p.out.Write(rec.Data)
		p.drawStatus(rec.Time, false)
	}
}

// showNote puts a chat message or session event on the progress line, or
// writes it as a line of its own when there is no progress line.
func (p *player) showNote(rec recorder.Record) {
	p.note, p.noteAt = noteText(rec, noteMax), rec.Time
	if p.status == nil {
		if p.notes != nil {
			// A line of its own is written whole: a command cut at the
			// progress line's width could hide what it did.
			fmt.Fprintf(p.notes, "[%s] %s\n", clock(rec.Time), noteText(rec, 0))
		}
		return
	}
	p.drawStatus(rec.Time, true)
}

// noteText describes a chat message, session event, input sent or the
// recorded terminal's size in one line of at most max characters (0: no
// limit). Control characters are shown escaped: a chat message or input
// is someone's text and may carry escape sequences meant for the
// reviewer's terminal.
func noteText(rec recorder.Record, max int) string {
	var s string
	switch rec.Type {
	case recorder.TypeInput:
		// What a shell or command without a terminal was sent (the only
		// trace of what it ran), or keystrokes when they are recorded.
		s = "input: " + strings.ToValidUTF8(string(rec.Data), "�")
	case recorder.TypeChat:
		s = "chat " + rec.From + ": " + rec.Text
	case recorder.TypeResize:
		// The reviewer's terminal keeps its own size: say what the
		// recorded one was, since lines drawn for it may wrap here.
		s = fmt.Sprintf("recorded terminal %dx%d", rec.Cols, rec.Rows)
	default:
		s = "event " + rec.Kind
		for _, k := range slices.Sorted(maps.Keys(rec.Detail)) {
			s += " " + k + "=" + rec.Detail[k]
		}
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == max && max > 0 {
			b.WriteString("…")
			break
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			fmt.Fprintf(&b, "\\x%02x", r)
		} else {
			b.WriteRune(r)
		}
		n++
	}
	return b.String()
}

// wait sleeps for d while handling key commands; it reports whether a
// seek happened (the record at hand must then be dropped).
func (p *player) wait(d time.Duration, at time.Duration) (bool, error) {
	for {
		var key byte
		if p.paused {
			key = <-p.keys
		} else {
			k, slept := replaySleep(d, p.keys)
			if slept {
				return false, nil
			}
			key = k
		}
		switch key {
		case ' ':
			p.paused = !p.paused
			p.drawStatus(p.prev, true)
		case 'q', 3:
			return false, errQuit
		case 'f', 'C':
			return true, p.seek(max(at, p.prev) + seekStep)
		case 'b', 'D':
			return true, p.seek(p.prev - seekStep)
		}
	}
}

func clock(d time.Duration) string {
	s := int(d.Seconds())
	return fmt.Sprintf("%02d:%02d:%02d", s/3600, s/60%60, s%60)
}

// drawStatus writes the progress line on the bottom row of the terminal.
func (p *player) drawStatus(at time.Duration, force bool) {
	if p.status == nil || (!force && time.Since(p.lastDraw) < 250*time.Millisecond) {
		return
	}
	p.lastDraw = time.Now()
	state := "playing"
	if p.paused {
		state = "paused "
	}
	pct := 100
	if p.total > 0 {
		pct = int(at * 100 / p.total)
	}
	tail := "[space] pause  [←/→] seek 10s  [q] quit"
	if p.note != "" && at >= p.noteAt && at < p.noteAt+noteFor {
		tail = p.note
	}
	fmt.Fprintf(p.status, "\x1b7\x1b[999;1H\x1b[2K\x1b[7m %s %s / %s %3d%%  x%g  %s \x1b[0m\x1b8",
		state, clock(at), clock(p.total), pct, p.speed, tail)
}

func (p *player) clearStatus() {
	if p.status != nil {
		fmt.Fprint(p.status, "\x1b7\x1b[999;1H\x1b[2K\x1b8\r\n")
	}
}

// readKeys puts the terminal in a non-canonical, no-echo mode with reads
// that time out every 100 ms, and forwards keys until stop is called.
func (p *player) readKeys(f *os.File) (stop func(), err error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	raw := *old
	raw.Lflag &^= unix.ICANON | unix.ECHO | unix.ISIG
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 0, 1
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 16)
		for {
			select {
			case <-done:
				return
			default:
			}
			n, err := f.Read(buf)
			if err != nil && !errors.Is(err, io.EOF) {
				return
			}
			for _, b := range buf[:n] {
				if b == 0x1b || b == '[' {
					continue // arrow keys arrive as ESC [ C / ESC [ D
				}
				select {
				case p.keys <- b:
				default:
				}
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		unix.IoctlSetTermios(fd, unix.TCSETS, old)
	}, nil
}
