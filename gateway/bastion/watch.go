package bastion

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"supportgate/recorder"
	"supportgate/recorder/vt"
	"supportgate/session"
)

// A supervisor's watch is a read-only view of the session's shells. It
// shows one channel at a time, as a terminal can; the supervisor moves
// between the open ones with keys and leaves with q or Ctrl-C. Nothing
// typed reaches a shell: the keys are read by the watch alone, and
// everything else is dropped.
const (
	// watchKeysHelp is the watch's one-line help.
	watchKeysHelp = "] or Tab: next channel, [: previous, 1-9: n-th open, ?: help and redraw, q or Ctrl-C: quit"
	// maxRedraw caps a screen redrawn for a supervisor (a screen of the
	// largest size, every cell coloured, is tens of MiB).
	maxRedraw = 4 << 20
	// maxWatchActions caps the key presses acted on per second and
	// supervisor (each switch is audited); the keys of one read count once.
	maxWatchActions = 10
	// watchReadSize is what one read of the supervisor's keys takes.
	watchReadSize = 256
)

// watcher is one supervisor's view.
type watcher struct {
	out     chan []byte
	dropped atomic.Int64

	// Guarded by sessState.wmu.
	ch         int          // the channel shown; 0 until one is open
	pty        bool         // the supervisor has a terminal: screens are redrawn on it
	cols, rows int          // the supervisor's terminal size; 0 if not told
	told       map[int]bool // other channels the supervisor was told of
}

// send queues b for the supervisor; a slow watcher loses output, never
// the agent. The caller holds sessState.wmu.
func (w *watcher) send(b []byte) {
	select {
	case w.out <- b:
	default:
		w.dropped.Add(int64(len(b)))
	}
}

// note queues a line of the gateway's for the supervisor.
func (w *watcher) note(msg string) {
	w.send([]byte("\r\n[supportgate: " + msg + "]\r\n"))
}

// discardQueued drops what is queued and not yet sent: a redraw that
// follows makes it moot.
func (w *watcher) discardQueued() {
	for {
		select {
		case <-w.out:
		default:
			return
		}
	}
}

// output records the output of channel num and copies it to the
// supervisors watching that channel. A watcher shows one channel, as the
// recording keeps each apart: two shells interleaved on one terminal would
// be unreadable. It is told once of each other channel with output. What
// the recording refuses is not shown either.
func (st *sessState) output(num int, p []byte) error {
	st.wmu.Lock()
	defer st.wmu.Unlock()
	if err := st.rec.OutputOn(num, p); err != nil {
		return err
	}
	for w := range st.watchers {
		switch {
		case w.ch == num:
			w.send(bytes.Clone(p))
		case w.ch == 0:
			// The first channel with output: its screen holds p.
			if !st.showLocked(w, num, "") {
				w.send(bytes.Clone(p))
			}
		case !w.told[num]:
			if w.told == nil {
				w.told = map[int]bool{}
			}
			w.told[num] = true
			w.note(fmt.Sprintf("the agent has another channel (%d) open; this view stays on channel %d, ] shows the next, the recording keeps both", num, w.ch))
		}
	}
	return nil
}

// channelOpened adds channel num, which started a shell or command, to
// the channels a supervisor can pick.
func (st *sessState) channelOpened(num int) {
	st.wmu.Lock()
	defer st.wmu.Unlock()
	if i, found := slices.BinarySearch(st.open, num); !found {
		st.open = slices.Insert(st.open, i, num)
	}
}

// channelEnded takes channel num off the open channels and moves its
// watchers on to the next open one.
func (st *sessState) channelEnded(num int) {
	st.wmu.Lock()
	defer st.wmu.Unlock()
	st.open = slices.DeleteFunc(st.open, func(n int) bool { return n == num })
	for w := range st.watchers {
		delete(w.told, num)
		if w.ch != num {
			continue
		}
		w.ch = 0
		if next := st.stepLocked(num, 1); next != 0 {
			st.showLocked(w, next, fmt.Sprintf("channel %d closed; ", num))
		} else {
			w.note(fmt.Sprintf("channel %d closed; the view shows the next channel with output", num))
		}
	}
}

// stepLocked returns the open channel after from (dir > 0) or before it
// (dir < 0), going round; from need not be open (0: none). It returns 0
// if none is open.
func (st *sessState) stepLocked(from, dir int) int {
	n := len(st.open)
	if n == 0 {
		return 0
	}
	i, found := slices.BinarySearch(st.open, from)
	switch {
	case dir > 0 && found:
		i++
	case dir < 0:
		i--
	}
	return st.open[(i%n+n)%n]
}

// showLocked makes w show channel num: what was queued of another is
// dropped, the channel's current screen is drawn (on a terminal) with a
// status line that names it, prefixed by note, and its live output
// follows. It reports whether the screen was drawn.
func (st *sessState) showLocked(w *watcher, num int, note string) bool {
	w.ch = num
	w.discardQueued()
	pos := fmt.Sprintf("now showing channel %d", num)
	if i, found := slices.BinarySearch(st.open, num); found {
		pos += fmt.Sprintf(" (%d of %d open)", i+1, len(st.open))
	}
	if !w.pty {
		w.note(note + pos + "; its output from now on (no terminal here to draw its screen on)")
		return false
	}
	status := "[supportgate: " + note + pos + "; ? for keys]"
	scr, err := st.rec.Screen(num, status)
	switch {
	case errors.Is(err, recorder.ErrNoChannel):
		// Nothing recorded of it yet: a blank screen of the watch's size.
		w.send(vt.New(w.cols, w.rows).Redraw(status))
		return true
	case err != nil:
		return false // the recording is closing, and the session with it
	}
	if w.cols > 0 && (scr.Cols != w.cols || scr.Rows != w.rows) {
		status = fmt.Sprintf("[supportgate: %s%s; it is %dx%d, this window %dx%d]", note, pos, scr.Cols, scr.Rows, w.cols, w.rows)
		if scr, err = st.rec.Screen(num, status); err != nil {
			return false
		}
	}
	if len(scr.Redraw) > maxRedraw {
		w.note(fmt.Sprintf("%s%s; its screen is too large to draw (%d bytes), its output from now on", note, pos, len(scr.Redraw)))
		return false
	}
	// What redaction holds back (the prompt's line, with patterns) is not
	// on the screen yet, and the live output after it goes on from there.
	w.send(append(scr.Redraw, scr.Held...))
	return true
}

// keysLocked acts on the keys a supervisor typed in one read (see
// watchKeys): the channel they lead to is drawn once, with the help or
// what was wrong on its status line. It returns the channel shown if the
// keys changed it, else 0.
func (st *sessState) keysLocked(w *watcher, keys []byte) int {
	from, target := w.ch, w.ch
	var note string
	for _, k := range keys {
		switch k {
		case keyNext:
			target = st.stepLocked(target, 1)
		case keyPrev:
			target = st.stepLocked(target, -1)
		case keyHelp:
			note = watchKeysHelp + "; "
		default: // '1'..'9'
			if i := int(k - '1'); i < len(st.open) {
				target = st.open[i]
			} else {
				note = fmt.Sprintf("there is no channel %c: %d open; ", k, len(st.open))
			}
		}
	}
	if target == 0 {
		w.note(note + "no channel is open yet; the view shows the first with output")
		return 0
	}
	st.showLocked(w, target, note)
	if target == from {
		return 0
	}
	return target
}

// The watch's keys, as watchKeys reports them; a digit is itself.
const (
	keyNext = 'n'
	keyPrev = 'p'
	keyHelp = '?'
	keyQuit = 'q'
)

// watchKeys reads a supervisor's keys byte by byte. Tab and ']' show
// the next channel, '[' the previous, '1' to '9' the n-th open one, '?'
// the help; 'q', Ctrl-C and Ctrl-D end the watch. Escape sequences are skipped whole, so that an arrow key's
// ESC [ A is no '[' and a function key's digits pick nothing; every other
// byte is dropped. Its state is a few bytes whatever it reads.
type watchKeys struct {
	state byte // 0: ground, else the kind of sequence being skipped
	n     int  // bytes of the sequence so far
}

const (
	wkEsc = 1 + iota // after ESC
	wkCSI            // ESC [ ..., up to its final byte
	wkSS3            // ESC O, one byte follows
)

// maxKeySeq bounds an escape sequence: past it, reading starts afresh.
const maxKeySeq = 32

// key returns the key b completes, or 0.
func (k *watchKeys) key(b byte) byte {
	if k.state != 0 {
		k.n++
		if k.n > maxKeySeq { // this byte ends it
			k.state = 0
			return 0
		}
	}
	switch k.state {
	case wkEsc:
		switch b {
		case '[':
			k.state = wkCSI
		case 'O':
			k.state = wkSS3
		case 0x1b:
		default:
			k.state = 0 // Alt and a key
		}
		return 0
	case wkCSI:
		if b >= 0x40 && b <= 0x7e {
			k.state = 0
		}
		return 0
	case wkSS3:
		k.state = 0
		return 0
	}
	switch {
	case b == 0x1b:
		k.state, k.n = wkEsc, 0
	case b == '\t' || b == ']':
		return keyNext
	case b == '[':
		return keyPrev
	case b == '?':
		return keyHelp
	case b == 'q' || b == 0x03 || b == 0x04:
		return keyQuit
	case b >= '1' && b <= '9':
		return b
	}
	return 0
}

// addWatcher adds a supervisor's view, showing channel want if it is
// open, else the first open channel. It returns the channel shown, or 0.
func (st *sessState) addWatcher(pty bool, cols, rows, want int) (*watcher, int) {
	w := &watcher{out: make(chan []byte, 256), pty: pty, cols: cols, rows: rows}
	st.wmu.Lock()
	defer st.wmu.Unlock()
	st.watchers[w] = struct{}{}
	var note string
	if want != 0 {
		if _, found := slices.BinarySearch(st.open, want); found {
			st.showLocked(w, want, "")
			return w, want
		}
		note = fmt.Sprintf("channel %d is not open; ", want)
	}
	if first := st.stepLocked(0, 1); first != 0 {
		st.showLocked(w, first, note)
	} else if note != "" {
		w.note(note + "the view shows the first channel with output")
	}
	return w, w.ch
}

// parseWatch parses the command of the watch's exec form, "watch" or
// "watch CHANNEL", and returns the channel, 0 for none.
func parseWatch(cmd string) (int, bool) {
	if len(cmd) > 64 {
		return 0, false
	}
	f := strings.Fields(cmd)
	switch {
	case len(f) == 1 && f[0] == "watch":
		return 0, true
	case len(f) == 2 && f[0] == "watch":
		if n, err := strconv.Atoi(f[1]); err == nil && n >= 1 && n <= recorder.MaxChannel {
			return n, true
		}
	}
	return 0, false
}

func (st *sessState) removeWatcher(w *watcher) {
	st.wmu.Lock()
	delete(st.watchers, w)
	st.wmu.Unlock()
}

// resizeWatcher records the size of the supervisor's terminal.
func (st *sessState) resizeWatcher(w *watcher, cols, rows int) {
	st.wmu.Lock()
	w.cols, w.rows = cols, rows
	st.wmu.Unlock()
}

// hasOpen reports whether a channel is open.
func (st *sessState) hasOpen() bool {
	st.wmu.Lock()
	defer st.wmu.Unlock()
	return len(st.open) > 0
}

// watch serves a supervisor's session channel: a read-only view of the
// session's shells, one channel at a time, which the supervisor picks
// with keys (see watchKeys). It starts on a shell request, or on the
// command "watch CHANNEL" to start on that channel. Nothing the
// supervisor types reaches a shell or the recording.
func (cn *conn) watch(nch ssh.NewChannel) {
	s, err := cn.srv.cfg.Sessions.Get(cn.ctx, cn.id)
	if err != nil || !s.Scopes.Has(session.Shell) {
		nch.Reject(ssh.Prohibited, "supportgate: this session has no shell to watch")
		return
	}
	st, ch, reqs, ok := cn.accept(nch, true)
	if !ok {
		return
	}
	defer cn.unregister(ch)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ch.Close()
	var shown atomic.Pointer[watcher] // set once the watch started
	quit := make(chan struct{})       // closed by watchKeys on a quit key
	wg.Add(1)
	go func() {
		defer wg.Done()
		cn.watchKeys(ch, st, &shown, quit)
	}()
	var w *watcher
	stop := make(chan struct{})
	defer func() {
		close(stop)
		if w != nil {
			st.removeWatcher(w)
			cn.presence("watch", false)
			st.notify("supervisor " + cn.principal + " left")
			cn.audit("channel.closed", map[string]string{"channel": "watch", "bytes_out": "0", "bytes_in": "0"})
		}
	}()
	var pty bool
	var cols, rows int
	for req := range reqs {
		switch req.Type {
		case "pty-req", "window-change":
			var c, r uint32
			if req.Type == "pty-req" {
				var p ptyRequest
				if ssh.Unmarshal(req.Payload, &p) == nil {
					pty, c, r = true, p.Cols, p.Rows
				}
			} else {
				var wc windowChange
				if ssh.Unmarshal(req.Payload, &wc) == nil {
					c, r = wc.Cols, wc.Rows
				}
			}
			if c > 0 && r > 0 && c <= 1000 && r <= 1000 {
				cols, rows = int(c), int(r)
				if w != nil {
					st.resizeWatcher(w, cols, rows)
				}
			}
			if req.WantReply {
				req.Reply(true, nil)
			}
		case "env":
			if req.WantReply {
				req.Reply(true, nil)
			}
		case "shell", "exec":
			var want int
			if req.Type == "exec" {
				var c struct{ Command string }
				ok := ssh.Unmarshal(req.Payload, &c) == nil
				if ok {
					want, ok = parseWatch(c.Command)
				}
				if !ok && w == nil {
					// OpenSSH drops what comes with a refused command:
					// accept it, say why and end the channel.
					req.Reply(true, nil)
					io.WriteString(ch.Stderr(), "supportgate: supervisors watch read-only: the one command is \"watch [CHANNEL]\"\r\n")
					ch.SendRequest("exit-status", false, ssh.Marshal(struct{ C uint32 }{1}))
					ch.Close()
					continue
				}
				if !ok {
					req.Reply(false, nil)
					continue
				}
			}
			if w != nil {
				req.Reply(false, nil)
				continue
			}
			req.Reply(true, nil)
			fmt.Fprintf(ch, "supportgate: watching session %s of %s read-only as supervisor %s. This session is recorded.\r\n"+
				"supportgate: keys: %s. Nothing you type reaches the agent's shells.\r\n",
				s.ID, s.Agent, cn.principal, watchKeysHelp)
			if pty && st.hasOpen() {
				// The screen drawn next clears the window: move these
				// lines up into the scrollback, where they stay.
				io.WriteString(ch, string(bytes.Repeat([]byte("\r\n"), max(rows, 24))))
			}
			var first int
			w, first = st.addWatcher(pty, cols, rows, want)
			shown.Store(w)
			cn.presence("watch", true)
			st.notify("supervisor " + cn.principal + " joined (read-only)")
			ad := map[string]string{"channel": "watch", "session_agent": s.Agent}
			if first != 0 {
				ad["channel_id"] = strconv.Itoa(first)
			}
			cn.audit("session.watched", ad)
			wg.Add(1)
			go func() {
				defer wg.Done()
				// What the customer's machine prints reaches the
				// supervisor as a replay would: nothing that writes
				// their clipboard or makes their terminal answer.
				out := &vt.Filter{W: ch}
				for {
					select {
					case b := <-w.out:
						if _, err := out.Write(b); err != nil {
							return
						}
					case <-quit:
						out.Write([]byte("\r\nsupportgate: watch ended\r\n"))
						ch.SendRequest("exit-status", false, ssh.Marshal(struct{ C uint32 }{0}))
						ch.Close()
						return
					case <-stop:
						return
					case <-cn.ctx.Done():
						return
					}
				}
			}()
		default:
			io.WriteString(ch.Stderr(), "supportgate: supervisors watch read-only: only a shell or \"watch [CHANNEL]\" is accepted\r\n")
			if req.WantReply {
				req.Reply(false, nil)
			}
		}
	}
}

// watchKeys reads what the supervisor types until the channel ends and
// acts on the watch's keys; everything else is dropped here, so nothing
// typed reaches a shell. A switch the keys make is audited and recorded.
// A quit key of a started watch closes quit and ends the reading.
func (cn *conn) watchKeys(ch ssh.Channel, st *sessState, shown *atomic.Pointer[watcher], quit chan<- struct{}) {
	var parse watchKeys
	var buf [watchReadSize]byte
	var keys []byte
	var second time.Time // the second the actions counted are in
	var acted int
	for {
		n, err := ch.Read(buf[:])
		keys = keys[:0]
		for _, b := range buf[:n] {
			if k := parse.key(b); k != 0 {
				keys = append(keys, k)
			}
		}
		w := shown.Load()
		if w != nil && slices.Contains(keys, keyQuit) {
			close(quit)
			return
		}
		if w != nil && len(keys) > 0 {
			now := cn.srv.cfg.Now()
			if now.Sub(second) >= time.Second || now.Before(second) {
				second, acted = now, 0
			}
			if acted < maxWatchActions {
				acted++
				st.wmu.Lock()
				to := st.keysLocked(w, keys)
				st.wmu.Unlock()
				if to != 0 {
					id := strconv.Itoa(to)
					cn.audit("session.watch_switched", map[string]string{"channel": "watch", "channel_id": id})
					st.rec.Event("ssh.watch_switched", map[string]string{"supervisor": cn.principal, "channel_id": id})
				}
			}
		}
		if err != nil {
			return
		}
	}
}
