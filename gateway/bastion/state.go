package bastion

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"supportgate/recorder"
	"supportgate/session"
)

// sessState is what the connections of one session share: its recording,
// the supervisors watching and the agents' terminals that get notices. It
// is made on the first channel and lives until the session ends.
type sessState struct {
	srv *Server
	id  string
	ctx context.Context // the session's
	rec *recorder.Writer
	own bool // rec was made here and is closed here

	idle time.Duration // the session's idle timeout; 0: none

	// chans numbers the session channels of every connection of the
	// session, from 1: the recording's terminal records and the
	// channel events name a channel by it.
	chans atomic.Int64

	mu         sync.Mutex // guards the fields below
	expires    time.Time
	warned     bool
	idleWarned time.Time              // the last activity the idle warning was given for
	idleCheck  time.Time              // no idle warning can be due before this (activity only moves it later)
	notices    map[io.Writer]struct{} // agents' shell stderr

	// wmu guards open, watchers and each watcher's view. output holds it
	// while it records, so that a watcher's redraw of a channel's screen
	// and that channel's live output after it come in order, none of it
	// twice and none lost. It is taken before the recording's lock.
	wmu      sync.Mutex
	open     []int // the channels running a shell or command, ascending
	watchers map[*watcher]struct{}
}

// state returns the session's shared state, creating it and its recording
// on first use.
func (s *Server) state(id string) (*sessState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.sessions[id]; st != nil {
		return st, nil
	}
	if s.closed {
		return nil, errors.New("gateway is shutting down")
	}
	sctx, err := s.cfg.Sessions.Context(id)
	if err != nil {
		return nil, err
	}
	sess, err := s.cfg.Sessions.Get(sctx, id)
	if err != nil {
		return nil, err
	}
	var w *recorder.Writer
	own := s.cfg.Recording == nil
	if own {
		w, err = s.createRecording(id)
	} else {
		w, err = s.cfg.Recording(id)
	}
	if err != nil {
		s.log.Error("bastion: cannot create recording", "session", id, "err", err)
		return nil, errors.New("the recording cannot be written, so nothing is allowed")
	}
	w.Event("ssh.recording_started", map[string]string{"agent": sess.Agent, "customer": sess.Customer})
	st := &sessState{
		srv: s, id: id, ctx: sctx, rec: w, own: own, expires: sess.ExpiresAt, idle: sess.IdleTimeout,
		notices: map[io.Writer]struct{}{}, watchers: map[*watcher]struct{}{},
	}
	s.sessions[id] = st
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		st.run()
	}()
	return st, nil
}

// createRecording creates DIR/ID.sgrec; if a previous gateway run left
// one, the next free DIR/ID.N.sgrec (N from 1), named as the gateway names
// the parts of its own recordings.
func (s *Server) createRecording(id string) (*recorder.Writer, error) {
	for n := 0; n <= 100; n++ {
		rid := id
		if n > 0 {
			rid = id + "." + strconv.Itoa(n)
		}
		path := filepath.Join(s.cfg.RecordingsDir, rid+".sgrec")
		w, err := recorder.Create(path, recorder.WriterConfig{
			RecordingID: rid,
			SessionID:   id,
			Recipients:  s.cfg.Recipients,
			Signer:      s.cfg.Signer,
			Now:         s.cfg.Now,
			Redact:      s.cfg.Redact,
			RecordInput: s.cfg.RecordInput,
			Logger:      s.log,
		})
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return w, err
	}
	return nil, errors.New("too many recordings for one session")
}

// run warns the agents before the end and, if the recording is the
// bastion's own, closes it when the session ends (or the server closes).
func (st *sessState) run() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for done := false; !done; {
		select {
		case <-st.ctx.Done():
			done = true
		case <-st.srv.ctx.Done():
			done = true
		case <-t.C:
			st.checkWarning()
		}
	}
	reason := "gateway stopped"
	if st.ctx.Err() != nil {
		reason = endMessage(st.srv.ended(st.id))
	}
	st.srv.mu.Lock()
	delete(st.srv.sessions, st.id)
	st.srv.mu.Unlock()
	st.rec.Event("ssh.session_ended", map[string]string{"reason": reason})
	if !st.own {
		return // its owner closes it
	}
	if err := st.rec.Close(); err != nil {
		st.srv.log.Error("bastion: closing recording", "session", st.id, "err", err)
	}
}

// ended returns the session once its end is visible, for the reason: the
// broker cancels the context before the ended state is stored, so for a
// moment the store may still say active. It waits at most 400 ms and
// returns nil if the end is not visible by then.
func (s *Server) ended(id string) *session.Session {
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	for {
		got, err := s.cfg.Sessions.Get(ctx, id)
		if err == nil && got.State == session.Ended {
			return got
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// checkWarning tells the agents once that the session ends within
// WarnBefore, at the end of its time box (an extension re-arms it) or for
// want of activity (new activity re-arms it).
func (st *sessState) checkWarning() {
	now := st.srv.cfg.Now()
	st.mu.Lock()
	exp, warned, idleCheck := st.expires, st.warned, st.idleCheck
	st.mu.Unlock()
	nearEnd := !exp.IsZero() && (exp.Sub(now) <= st.srv.cfg.WarnBefore+2*time.Second || warned)
	if !nearEnd && (st.idle <= 0 || now.Before(idleCheck)) {
		return
	}
	s, err := st.srv.cfg.Sessions.Get(st.ctx, st.id)
	if err != nil || s.State != session.Active {
		return
	}
	st.mu.Lock()
	if !s.ExpiresAt.Equal(st.expires) {
		st.expires, st.warned = s.ExpiresAt, false
	}
	end := !st.warned && st.expires.Sub(now) <= st.srv.cfg.WarnBefore
	if end {
		st.warned = true
	}
	idleEnd := s.LastActivity.Add(st.idle)
	idle := st.idle > 0 && !s.LastActivity.IsZero() && !st.idleWarned.Equal(s.LastActivity) &&
		idleEnd.Sub(now) <= st.srv.cfg.WarnBefore && idleEnd.Before(st.expires)
	if idle {
		st.idleWarned = s.LastActivity
	}
	// The idle deadline only moves later with activity, so until it comes
	// within WarnBefore there is nothing to look at.
	st.idleCheck = idleEnd.Add(-st.srv.cfg.WarnBefore - 2*time.Second)
	st.mu.Unlock()
	if end {
		st.notify(endWarning(st.expires, now))
	}
	if idle {
		st.notify(fmt.Sprintf("nothing has happened in this session for %s; it ends in %s, at %s, unless there is activity",
			now.Sub(s.LastActivity).Round(time.Second), max(idleEnd.Sub(now), 0).Round(time.Second), idleEnd.UTC().Format("15:04:05 UTC")))
	}
}

// notify writes a notice to every agent shell of the session and records it.
func (st *sessState) notify(msg string) {
	st.rec.Event("ssh.notice", map[string]string{"message": msg})
	st.mu.Lock()
	ws := make([]io.Writer, 0, len(st.notices))
	for w := range st.notices {
		ws = append(ws, w)
	}
	st.mu.Unlock()
	for _, w := range ws {
		io.WriteString(w, "\r\nsupportgate: "+msg+"\r\n")
	}
}

// addNotice registers an agent's terminal for notices. A terminal that
// arrives after the end warning was given gets it at once: the warning
// fires on the session's first channel, which may be some time before
// the shell that shows it.
func (st *sessState) addNotice(w io.Writer) {
	st.mu.Lock()
	st.notices[w] = struct{}{}
	exp, warned := st.expires, st.warned
	st.mu.Unlock()
	if warned {
		io.WriteString(w, "\r\nsupportgate: "+endWarning(exp, st.srv.cfg.Now())+"\r\n")
	}
}

// endWarning says when a session that ends at exp ends, seen at now.
func endWarning(exp, now time.Time) string {
	return fmt.Sprintf("this session ends in %s, at %s", max(exp.Sub(now), 0).Round(time.Second), exp.UTC().Format("15:04:05 UTC"))
}

func (st *sessState) removeNotice(w io.Writer) {
	st.mu.Lock()
	delete(st.notices, w)
	st.mu.Unlock()
}

// newChannel returns the number of a new session channel.
func (st *sessState) newChannel() int {
	return int(min(st.chans.Add(1), recorder.MaxChannel))
}
