package bastion

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/ssh"

	"supportgate/session"
)

// watcher is a supervisor's read-only view of the shells' output. It
// shows one channel at a time, as a terminal can: the first that has
// output, until it closes, then the next.
type watcher struct {
	out     chan []byte
	dropped atomic.Int64

	// Guarded by sessState.mu.
	ch    int          // the channel shown; 0 until one has output
	shown bool         // a channel was shown before ch (say which is now)
	told  map[int]bool // other channels the supervisor was told of
}

// send queues b for the supervisor; a slow watcher loses output, never
// the agent. The caller holds sessState.mu.
func (w *watcher) send(b []byte) {
	select {
	case w.out <- b:
	default:
		w.dropped.Add(int64(len(b)))
	}
}

// output records the output of channel num and copies it to the
// supervisors watching that channel. A watcher shows one channel, as the
// recording keeps each apart: two shells interleaved on one terminal would
// be unreadable. It is told once of each other channel with output.
func (st *sessState) output(num int, p []byte) error {
	err := st.rec.OutputOn(num, p)
	if st.nwatch.Load() > 0 {
		st.mu.Lock()
		for w := range st.watchers {
			switch {
			case w.ch == 0:
				w.ch = num
				if w.shown {
					w.send(fmt.Appendf(nil, "\r\n[supportgate: now showing channel %d]\r\n", num))
				}
			case w.ch != num:
				if !w.told[num] {
					if w.told == nil {
						w.told = map[int]bool{}
					}
					w.told[num] = true
					w.send(fmt.Appendf(nil, "\r\n[supportgate: the agent has another channel (%d) open; this view stays on channel %d, the recording keeps both]\r\n", num, w.ch))
				}
				continue
			}
			w.send(append([]byte(nil), p...))
		}
		st.mu.Unlock()
	}
	return err
}

// channelEnded moves the watchers of channel num on to the next channel
// that has output.
func (st *sessState) channelEnded(num int) {
	if st.nwatch.Load() == 0 {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for w := range st.watchers {
		delete(w.told, num)
		if w.ch == num {
			w.ch, w.shown = 0, true
			w.send(fmt.Appendf(nil, "\r\n[supportgate: channel %d closed]\r\n", num))
		}
	}
}

func (st *sessState) addWatcher() *watcher {
	w := &watcher{out: make(chan []byte, 256)}
	st.mu.Lock()
	st.watchers[w] = struct{}{}
	st.nwatch.Store(int32(len(st.watchers)))
	st.mu.Unlock()
	return w
}

func (st *sessState) removeWatcher(w *watcher) {
	st.mu.Lock()
	delete(st.watchers, w)
	st.nwatch.Store(int32(len(st.watchers)))
	st.mu.Unlock()
}

// watch serves a supervisor's session channel: a read-only view of the
// session's shells. Their input is discarded.
func (cn *conn) watch(nch ssh.NewChannel) {
	s, err := cn.srv.cfg.Sessions.Get(cn.ctx, cn.id)
	if err != nil || !s.Scopes.Has(session.Shell) {
		nch.Reject(ssh.Prohibited, "supportgate: this session has no shell to watch")
		return
	}
	st, err := cn.srv.state(cn.id)
	if err != nil {
		nch.Reject(ssh.ResourceShortage, "supportgate: "+err.Error())
		return
	}
	ch, reqs, err := nch.Accept()
	if err != nil {
		return
	}
	cn.register(ch, true)
	defer cn.unregister(ch)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ch.Close()
	wg.Add(1)
	go func() {
		defer wg.Done()
		io.Copy(io.Discard, ch) // read-only: keystrokes go nowhere
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
	for req := range reqs {
		switch req.Type {
		case "pty-req", "window-change", "env":
			if req.WantReply {
				req.Reply(true, nil)
			}
		case "shell":
			if w != nil {
				req.Reply(false, nil)
				continue
			}
			req.Reply(true, nil)
			fmt.Fprintf(ch, "supportgate: watching session %s of %s read-only as supervisor %s. This session is recorded.\r\n",
				s.ID, s.Agent, cn.principal)
			w = st.addWatcher()
			cn.presence("watch", true)
			st.notify("supervisor " + cn.principal + " joined (read-only)")
			cn.audit("session.watched", map[string]string{"channel": "watch", "session_agent": s.Agent})
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case b := <-w.out:
						if _, err := ch.Write(b); err != nil {
							return
						}
					case <-stop:
						return
					case <-cn.ctx.Done():
						return
					}
				}
			}()
		default:
			io.WriteString(ch.Stderr(), "supportgate: supervisors watch read-only: only a shell request is accepted\r\n")
			if req.WantReply {
				req.Reply(false, nil)
			}
		}
	}
}
