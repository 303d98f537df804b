package gateway

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"supportgate/gateway/audit"
	"supportgate/recorder"
	"supportgate/session"
)

// Compliance review (issue 8): auditors list the recordings, download
// them, say what they did with them and fetch the audit slice of a session
// to check offline. The gateway serves the encrypted .sgrec files as they
// are on disk and never sees their key. Every download, note and evidence
// slice is an audit event, written before the answer; if it cannot be
// written, the request is refused.

func init() { routeSets = append(routeSets, (*Gateway).recordingRoutes) }

func (g *Gateway) recordingRoutes() []route {
	return []route{
		{"GET", "/api/v1/recordings", roles(auditor), g.handleListRecordings},
		{"GET", "/api/v1/recordings/{id}", roles(auditor), g.handleDownloadRecording},
		{"POST", "/api/v1/recordings/{id}/audit", roles(auditor), g.handleNoteRecording},
		{"GET", "/api/v1/recordings/{id}/evidence", roles(auditor), g.handleRecordingEvidence},
	}
}

// Limits of the review API.
const (
	// MaxRecordingsList is the most recordings GET /api/v1/recordings
	// lists: those of the newest approved sessions. Past it the answer
	// says "truncated": true.
	MaxRecordingsList = 10_000
	// MaxRecordingNote bounds the detail of a review note (it travels in
	// an audit detail).
	MaxRecordingNote = 1024
	// maxRangeHeader bounds the Range header of a download, which the
	// audit event records.
	maxRangeHeader = 256
)

// reviewEventPrefix starts the types of the review events of this file.
// They carry the session id but are not part of the session's own story,
// so an evidence slice does not stretch to cover them.
const reviewEventPrefix = "recording."

// sessionAuditStore finds the audit records of one session through an
// index rather than a scan of the whole log. The SQLite store is one;
// without it, evidence slices are not served.
type sessionAuditStore interface {
	ScanSessionAudit(ctx context.Context, session string, from uint64, fn func(audit.Record) error) error
}

// RecordingView is one entry of GET /api/v1/recordings: an approved
// session joined with its recording file. Missing is true (and Size 0)
// when the file does not exist: the session was approved but nothing was
// recorded, or the file was removed. Unset times are null.
type RecordingView struct {
	SessionID  string         `json:"session_id"`
	Agent      string         `json:"agent"`
	Customer   string         `json:"customer"`
	Scopes     session.Scopes `json:"scopes"`
	State      session.State  `json:"state"`
	EndReason  string         `json:"end_reason"`
	ApprovedAt *time.Time     `json:"approved_at"`
	EndedAt    *time.Time     `json:"ended_at"`
	Size       int64          `json:"size"`
	Modified   *time.Time     `json:"modified"`
	Missing    bool           `json:"missing"`
	// Parts are the recording's continuations, "ID.1" and on: a session
	// the gateway resumed after a restart goes on in a new file (see
	// RecordingPath). Each is fetched by its id like the first.
	Parts []RecordingPart `json:"parts,omitempty"`
	// Status is the recording's shape, from its header and signed end
	// only (reviewers verify every record): "complete" (signed end),
	// "recording" (the session is active), "cut_short" (ended without a
	// signed end: the gateway stopped while writing it), "unreadable"
	// (header or end fails its signature) or "missing".
	Status string `json:"status"`
}

// RecordingPart is one continuation file of a session's recording.
type RecordingPart struct {
	ID       string     `json:"id"`
	Size     int64      `json:"size"`
	Modified *time.Time `json:"modified"`
	Status   string     `json:"status"`
}

// maxRecordingParts bounds the continuations looked for, as the gateway
// bounds those it makes.
const maxRecordingParts = 100

// parseRecordingID splits a recording id, SESSION or SESSION.N (N from 1
// to maxRecordingParts, no leading zero), into its session and part.
func parseRecordingID(id string) (sessionID string, part int, ok bool) {
	sid, n, dotted := strings.Cut(id, ".")
	if !session.ValidID(sid) {
		return "", 0, false
	}
	if !dotted {
		return sid, 0, true
	}
	p, err := strconv.Atoi(n)
	if err != nil || p < 1 || p > maxRecordingParts || strconv.Itoa(p) != n {
		return "", 0, false
	}
	return sid, p, true
}

// recordingID is the id of part of a session's recording.
func recordingID(sessionID string, part int) string {
	if part == 0 {
		return sessionID
	}
	return sessionID + "." + strconv.Itoa(part)
}

// statFile describes one recording file in the recordings root: its size,
// time and status; ok is false when it does not exist (or is not a
// regular file, which is logged).
func (g *Gateway) statFile(root *os.Root, name string, s *session.Session) (size int64, mod *time.Time, status string, ok bool) {
	fi, err := root.Stat(name)
	switch {
	case err == nil && fi.Mode().IsRegular():
		status = "unreadable"
		if f, err := root.Open(name); err == nil {
			status = recordingStatus(f, fi.Size(), s)
			f.Close()
		}
		return fi.Size(), timePtr(fi.ModTime()), status, true
	case err == nil:
		g.log.Error("recording is not a regular file", "file", name, "mode", fi.Mode().String())
	case !errors.Is(err, fs.ErrNotExist):
		g.log.Error("recording unreadable", "file", name, "err", err)
	}
	return 0, nil, "", false
}

// recordingStatus reads the header and signed end of an open recording.
func recordingStatus(f *os.File, size int64, s *session.Session) string {
	ended, err := recorder.Ended(f, size)
	switch {
	case err != nil:
		return "unreadable"
	case ended:
		return "complete"
	case s.State == session.Active:
		return "recording"
	}
	return "cut_short"
}

// recordingsRoot opens the recordings directory as an os.Root, so that no
// name can reach outside it; ok is false when it does not exist yet.
func (g *Gateway) recordingsRoot() (root *os.Root, ok bool, err error) {
	root, err = os.OpenRoot(filepath.Join(g.keys.Dir, RecordingsDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("gateway: recordings: %w", err)
	}
	return root, true, nil
}

// recordingName is the file name of a recording; id must be a session id
// that passed session.ValidID or a recordingID of one.
func recordingName(id string) string { return id + ".sgrec" }

// handleListRecordings lists the recordings of the newest approved
// sessions, at most MaxRecordingsList, newest first. Sessions that never
// became active (denied, link expired) have none and are not listed.
func (g *Gateway) handleListRecordings(w http.ResponseWriter, r *http.Request, p *principal) {
	ctx := r.Context()
	ss, truncated, err := g.approvedSessions(ctx)
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	root, ok, err := g.recordingsRoot()
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	if ok {
		defer root.Close()
	}
	out := make([]RecordingView, 0, len(ss))
	for _, s := range ss {
		v := RecordingView{
			SessionID: s.ID, Agent: s.Agent, Customer: s.Customer, Scopes: orEmpty(s.Scopes),
			State: s.State, EndReason: string(s.EndReason),
			ApprovedAt: timePtr(s.ApprovedAt), EndedAt: timePtr(s.EndedAt), Missing: true, Status: "missing",
		}
		if ok && session.ValidID(s.ID) {
			if size, mod, status, found := g.statFile(root, recordingName(s.ID), s); found {
				v.Size, v.Modified, v.Missing, v.Status = size, mod, false, status
			}
			for n := 1; n <= maxRecordingParts; n++ {
				id := recordingID(s.ID, n)
				size, mod, status, found := g.statFile(root, recordingName(id), s)
				if !found {
					break // parts are made in order
				}
				v.Parts = append(v.Parts, RecordingPart{ID: id, Size: size, Modified: mod, Status: status})
			}
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"recordings": out, "truncated": truncated})
}

// approvedSessions pages through the store for the newest approved
// sessions, at most MaxRecordingsList; truncated says older ones exist.
func (g *Gateway) approvedSessions(ctx context.Context) (ss []*session.Session, truncated bool, err error) {
	f := session.Filter{Approved: true}
	// A store pages at most session.MaxList at a time; the page bound
	// also ends the loop should a store ignore Approved or After.
	for pages := 0; pages <= MaxRecordingsList/session.MaxList; pages++ {
		f.Limit = min(session.MaxList, MaxRecordingsList+1-len(ss))
		page, err := g.broker.List(ctx, f)
		if err != nil {
			return nil, false, err
		}
		for _, s := range page {
			if !s.ApprovedAt.IsZero() {
				ss = append(ss, s)
			}
		}
		if len(page) < f.Limit || len(ss) > MaxRecordingsList {
			break
		}
		f.After = page[len(page)-1]
	}
	if len(ss) > MaxRecordingsList {
		return ss[:MaxRecordingsList], true, nil
	}
	return ss, false, nil
}

// reviewedSession checks the recording id of the path (before it reaches
// the store or a file name) and loads its session; part is 0 for the
// first file, N for the continuation ID.N.
func (g *Gateway) reviewedSession(r *http.Request) (s *session.Session, part int, err error) {
	sid, part, ok := parseRecordingID(r.PathValue("id"))
	if !ok {
		return nil, 0, errorf(http.StatusBadRequest, "recording id must be a session id (16 hex digits), or one with .N for a continuation")
	}
	s, err = g.broker.Get(r.Context(), sid)
	return s, part, err
}

// recordAccess appends an audit event that must be stored before the
// access it reports is granted: unlike record, it fails the request when
// the audit log cannot take the event.
func (g *Gateway) recordAccess(ctx context.Context, e audit.Event) error {
	if e.Time.IsZero() {
		e.Time = g.clock.Now()
	}
	rec, err := g.audit.Append(context.WithoutCancel(ctx), e)
	if err != nil {
		g.metrics.auditFailures.Inc()
		g.log.Error("audit append failed", "type", e.Type, "err", err)
		return errorf(http.StatusServiceUnavailable, "the access could not be audited, so it is refused; try again")
	}
	g.recorded(rec)
	return nil
}

// handleDownloadRecording serves a session's recording file as it is on
// disk, with Range support, after auditing the download.
func (g *Gateway) handleDownloadRecording(w http.ResponseWriter, r *http.Request, p *principal) {
	s, part, err := g.reviewedSession(r)
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	rng := r.Header.Get("Range")
	if len(rng) > maxRangeHeader || strings.ContainsFunc(rng, func(c rune) bool { return c < ' ' || c > '~' }) {
		g.writeErr(w, r, errorf(http.StatusBadRequest, "malformed Range header"))
		return
	}
	missing := errorf(http.StatusNotFound, "the recording of session %s is missing", s.ID)
	root, ok, err := g.recordingsRoot()
	if err == nil && !ok {
		err = missing
	}
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	defer root.Close()
	name := recordingName(recordingID(s.ID, part))
	f, err := root.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		g.writeErr(w, r, missing)
		return
	}
	if err != nil {
		g.writeErr(w, r, fmt.Errorf("gateway: recording of session %s: %w", s.ID, err))
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		g.writeErr(w, r, fmt.Errorf("gateway: recording of session %s: %w", s.ID, err))
		return
	}
	if !fi.Mode().IsRegular() {
		g.log.Error("recording is not a regular file", "session", s.ID, "mode", fi.Mode().String())
		g.writeErr(w, r, missing)
		return
	}
	detail := map[string]string{"size": strconv.FormatInt(fi.Size(), 10)}
	if part > 0 {
		detail["part"] = strconv.Itoa(part)
	}
	if rng != "" {
		detail["range"] = rng
	}
	if r.Method == http.MethodHead {
		detail["method"] = "HEAD"
	}
	if err := g.recordAccess(r.Context(), audit.Event{Type: "recording.download", Actor: p.user.Name, Role: p.user.Role,
		Session: s.ID, Remote: clientAddr(r), Detail: detail}); err != nil {
		g.writeErr(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	http.ServeContent(w, r, "", fi.ModTime(), f)
}

// reviewActions are the actions a review tool reports with
// POST /api/v1/recordings/{id}/audit, each recorded as recording.ACTION.
var reviewActions = map[string]bool{"open": true, "export": true, "evidence": true}

// handleNoteRecording records what the review tool did with a recording:
// opened (decrypted) it, exported it, or checked its evidence slice. The
// gateway cannot see these happen, so the events say they come from the
// client.
func (g *Gateway) handleNoteRecording(w http.ResponseWriter, r *http.Request, p *principal) {
	if _, _, ok := parseRecordingID(r.PathValue("id")); !ok {
		g.writeErr(w, r, errorf(http.StatusBadRequest, "recording id must be a session id (16 hex digits), or one with .N for a continuation"))
		return
	}
	var req struct {
		Action string `json:"action"`
		Detail string `json:"detail"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		g.writeErr(w, r, err)
		return
	}
	if !reviewActions[req.Action] {
		g.writeErr(w, r, errorf(http.StatusBadRequest, "action must be open, export or evidence"))
		return
	}
	if len(req.Detail) > MaxRecordingNote {
		g.writeErr(w, r, errorf(http.StatusBadRequest, "detail is over %d bytes", MaxRecordingNote))
		return
	}
	s, part, err := g.reviewedSession(r)
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	detail := map[string]string{"source": "client"}
	if part > 0 {
		detail["part"] = strconv.Itoa(part)
	}
	if req.Detail != "" {
		detail["note"] = req.Detail
	}
	if err := g.recordAccess(r.Context(), audit.Event{Type: reviewEventPrefix + req.Action, Actor: p.user.Name, Role: p.user.Role,
		Session: s.ID, Remote: clientAddr(r), Detail: detail}); err != nil {
		g.writeErr(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleRecordingEvidence serves the session's evidence slice (see
// audit.Slice): its records from the first to the first signed checkpoint
// after the last, review events left out of that span, with the
// checkpoint key. Serving it is audited as recording.evidence with source
// "gateway"; a review tool that checked it reports the outcome with the
// evidence action, source "client".
func (g *Gateway) handleRecordingEvidence(w http.ResponseWriter, r *http.Request, p *principal) {
	ctx := r.Context()
	s, _, err := g.reviewedSession(r)
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	if g.auditIndex == nil {
		g.writeErr(w, r, errorf(http.StatusNotImplemented, "this gateway's store cannot find a session's audit records; use the full audit export"))
		return
	}
	first, last, err := g.sessionAuditSpan(ctx, s.ID)
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	if err := g.recordAccess(ctx, audit.Event{Type: "recording.evidence", Actor: p.user.Name, Role: p.user.Role,
		Session: s.ID, Remote: clientAddr(r), Detail: map[string]string{
			"source": "gateway", "first": strconv.FormatUint(first, 10), "last": strconv.FormatUint(last, 10),
		}}); err != nil {
		g.writeErr(w, r, err)
		return
	}
	sl, err := audit.CutSlice(ctx, g.store, s.ID, first, last, g.keys.SigningPublic)
	if errors.Is(err, audit.ErrSliceUnsigned) {
		// The session's last records are newer than the last checkpoint:
		// sign one now rather than make the reviewer wait for it.
		if err = g.audit.Checkpoint(ctx); err == nil {
			sl, err = audit.CutSlice(ctx, g.store, s.ID, first, last, g.keys.SigningPublic)
		}
	}
	switch {
	case errors.Is(err, audit.ErrSliceTooLarge):
		g.writeErr(w, r, errorf(http.StatusUnprocessableEntity, "the audit slice of session %s is over %d records or %d bytes; use the full audit export",
			s.ID, audit.MaxSliceRecords, audit.MaxSliceBytes))
		return
	case errors.Is(err, audit.ErrSliceUnsigned):
		g.writeErr(w, r, errorf(http.StatusServiceUnavailable, "no signed checkpoint covers session %s yet; try again", s.ID))
		return
	case err != nil:
		g.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sl)
}

// sessionAuditSpan finds the Seqs of the first and last audit records of a
// session, review events aside.
func (g *Gateway) sessionAuditSpan(ctx context.Context, id string) (first, last uint64, err error) {
	tooMany := errorf(http.StatusUnprocessableEntity, "session %s has over %d audit records; use the full audit export", id, audit.MaxSliceRecords)
	n := 0
	err = g.auditIndex.ScanSessionAudit(ctx, id, 0, func(r audit.Record) error {
		if n++; n > 2*audit.MaxSliceRecords {
			return tooMany
		}
		if strings.HasPrefix(r.Type, reviewEventPrefix) {
			return nil
		}
		if first == 0 {
			first = r.Seq
		}
		last = r.Seq
		if last-first >= audit.MaxSliceRecords {
			return tooMany
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	if first == 0 {
		return 0, 0, errorf(http.StatusNotFound, "session %s has no audit records", id)
	}
	return first, last, nil
}
