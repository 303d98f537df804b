package gateway

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"supportgate/gateway/audit"
	"supportgate/recorder"
	"supportgate/session"
)

// RecordingsDir is the directory, inside the data directory, that holds
// one recording per session: RecordingsDir/SESSION.sgrec.
const RecordingsDir = "recordings"

// recordings are the open recording writers, one per active session,
// shared by every transport of the session (WebRTC, the SSH bastion).
type recordings struct {
	mu     sync.Mutex // guards open, closed
	open   map[string]*openRecording
	closed bool
	wg     sync.WaitGroup // writers closing after their session ended
}

type openRecording struct {
	w    *recorder.Writer
	stop func() bool // unregisters the close at the session's end
}

// RecordingPath is where the recording of session id is written, given the
// gateway's data directory. A session resumed by a later gateway run
// continues in RecordingPath with a ".N" before the extension.
func RecordingPath(dataDir, id string) string {
	return filepath.Join(dataDir, RecordingsDir, recordingName(id))
}

// recording returns the recording writer of an active session, creating
// DATA/recordings/ID.sgrec on first use. The writer is closed (its signed
// end record written) when the session's context ends or the gateway
// closes; callers must not Close it.
func (g *Gateway) recording(sessionID string) (*recorder.Writer, error) {
	sctx, err := g.broker.Context(sessionID)
	if err != nil {
		return nil, err
	}
	rs := &g.recs
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.closed {
		return nil, errors.New("gateway: closed")
	}
	if r := rs.open[sessionID]; r != nil {
		return r.w, nil
	}
	dir := filepath.Join(g.keys.Dir, RecordingsDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("gateway: recording: %w", err)
	}
	cfg := recorder.WriterConfig{
		RecordingID: sessionID, SessionID: sessionID, Recipients: g.recipients,
		Signer: g.keys.SigningKey, Now: g.clock.Now, Rand: g.rand, Logger: g.log,
		Redact: g.recCfg.Redact, RecordInput: g.recCfg.RecordInput, MaxBytes: g.recCfg.MaxBytes,
		OnFailure: func(err error) { g.endUnrecorded(sessionID, err) },
	}
	// A session resumed after a restart continues in the next free part.
	var w *recorder.Writer
	for part := 0; ; part++ {
		cfg.RecordingID = recordingID(sessionID, part)
		w, err = recorder.Create(filepath.Join(dir, recordingName(cfg.RecordingID)), cfg)
		if !errors.Is(err, fs.ErrExist) || part == maxRecordingParts {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("gateway: recording of session %s: %w", sessionID, err)
	}
	if rs.open == nil {
		rs.open = map[string]*openRecording{}
	}
	if s, err := g.broker.Get(sctx, sessionID); err == nil {
		// What a reviewer needs to list the recording without the
		// gateway's database: who, for whom, what was granted, until when.
		w.Event("session.info", map[string]string{
			"session": s.ID, "agent": s.Agent, "customer": s.Customer,
			"scopes": s.Scopes.String(), "reason": s.Reason,
			"approved_at": s.ApprovedAt.UTC().Format(time.RFC3339),
			"expires_at":  s.ExpiresAt.UTC().Format(time.RFC3339),
		})
	}
	r := &openRecording{w: w}
	rs.open[sessionID] = r
	rs.wg.Add(1)
	r.stop = context.AfterFunc(sctx, func() {
		defer rs.wg.Done()
		rs.mu.Lock()
		if rs.open[sessionID] == r {
			delete(rs.open, sessionID)
		}
		rs.mu.Unlock()
		// The gateway stopping ends this recording, not the session: a
		// restart takes the session back and goes on in the next part.
		kind, detail := "session.ended", map[string]string(nil)
		if reason, ok := session.EndReasonOf(sctx); ok {
			detail = map[string]string{"reason": string(reason)}
		} else if errors.Is(context.Cause(sctx), session.ErrClosed) {
			kind = "gateway.stopped"
		}
		w.Event(kind, detail)
		if err := w.Close(); err != nil {
			g.log.Error("closing recording", "session", sessionID, "err", err)
		}
	})
	return w, nil
}

// endUnrecorded ends a session whose recording refuses records (its size
// cap reached, or its file failing): what the session did next would go
// unrecorded, so it must stop, as the time box would stop it. The audit
// log says why.
func (g *Gateway) endUnrecorded(sessionID string, err error) {
	g.log.Error("recording failed; ending the session", "session", sessionID, "err", err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	by := session.Actor{Name: "recorder", Role: "system"}
	g.record(ctx, audit.Event{Type: "recording.failed", Actor: by.Name, Role: by.Role, Session: sessionID,
		Detail: map[string]string{"error": err.Error()}})
	if _, err := g.broker.Revoke(ctx, sessionID, by); err != nil && !errors.Is(err, session.ErrEnded) {
		g.log.Error("ending a session whose recording failed", "session", sessionID, "err", err)
	}
}

// close closes every open recording and waits for those closing.
func (rs *recordings) close() {
	rs.mu.Lock()
	rs.closed = true
	open := rs.open
	rs.open = nil
	rs.mu.Unlock()
	for _, r := range open {
		if r.stop() {
			r.w.Close()
			rs.wg.Done()
		}
	}
	rs.wg.Wait()
}

// flagCutShort audits the recordings that the last run left without their
// signed end, one recording.cut_short event each: the sessions given were
// active when it stopped, so a recording of theirs whose newest part has
// no end was cut short by a crash (a clean shutdown closes them). A
// resumed session goes on in the next part.
func (g *Gateway) flagCutShort(ctx context.Context, wasActive []*session.Session) {
	flagCutShort(ctx, filepath.Join(g.keys.Dir, RecordingsDir), wasActive, g.record, g.log)
}

// flagCutShort is Gateway.flagCutShort over the recordings in dir, for
// EndOpenSessions too, which records with record and warns on log.
func flagCutShort(ctx context.Context, dir string, wasActive []*session.Session, record func(context.Context, audit.Event), log *slog.Logger) {
	for _, s := range wasActive {
		if !session.ValidID(s.ID) {
			continue
		}
		path := ""
		for part := 0; part <= maxRecordingParts; part++ {
			p := filepath.Join(dir, recordingName(recordingID(s.ID, part)))
			if _, err := os.Stat(p); err != nil {
				break
			}
			path = p
		}
		if path == "" {
			continue
		}
		ended, size, err := endedFile(path)
		if err == nil && ended {
			continue
		}
		detail := map[string]string{"file": filepath.Base(path), "size": fmt.Sprint(size)}
		if err != nil {
			detail["problem"] = err.Error()
		}
		record(ctx, audit.Event{Type: "recording.cut_short", Actor: "system", Role: "system", Session: s.ID, Detail: detail})
		log.Warn("recording cut short by the last run's stop", "session", s.ID, "file", path)
	}
}

// endedFile reports whether the recording at path has its signed end.
func endedFile(path string) (bool, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, 0, err
	}
	ok, err := recorder.Ended(f, fi.Size())
	return ok, fi.Size(), err
}
