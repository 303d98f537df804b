package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"
)

// Compliance review: an auditor's calls to the gateway's recordings API.
// The gateway serves the encrypted recordings as they are; decrypting and
// checking them is the caller's business.

// Limits of the review calls.
const (
	// MaxRecordingBytes bounds one downloaded recording.
	MaxRecordingBytes = 4 << 30
	// MaxEvidenceBytes bounds an evidence slice: the gateway's limit on
	// one (64 MiB, audit.MaxSliceBytes) and room for its envelope.
	MaxEvidenceBytes = 65 << 20
	// StreamIdleTimeout ends a download or evidence fetch that receives
	// nothing for this long. Such transfers have no overall time limit
	// (the ctx may set one), since a large recording may take a while.
	StreamIdleTimeout = 60 * time.Second
)

// Recording is one entry of the gateway's recordings list: a session a
// customer approved, joined with its recording file. Missing is true (and
// Size 0) when the gateway has no file for it.
type Recording struct {
	SessionID  string     `json:"session_id"`
	Agent      string     `json:"agent"`
	Customer   string     `json:"customer"`
	Scopes     []string   `json:"scopes"`
	State      string     `json:"state"`
	EndReason  string     `json:"end_reason"`
	ApprovedAt *time.Time `json:"approved_at"`
	EndedAt    *time.Time `json:"ended_at"`
	Size       int64      `json:"size"`
	Modified   *time.Time `json:"modified"`
	Missing    bool       `json:"missing"`
	Status     string     `json:"status"` // complete, recording, cut_short, unreadable or missing (header and signed end only)
	// Parts are continuations of the recording (ids "SESSION.N"), made
	// when the gateway resumed the session after a restart; download each
	// by its id.
	Parts []RecordingPart `json:"parts"`
}

// RecordingPart is one continuation file of a session's recording.
type RecordingPart struct {
	ID       string     `json:"id"`
	Size     int64      `json:"size"`
	Modified *time.Time `json:"modified"`
	Status   string     `json:"status"`
}

// Recordings lists the recordings of the newest approved sessions (the
// gateway lists at most 10,000; truncated says there are older ones),
// newest first. Auditors only.
func (c *Client) Recordings(ctx context.Context) (recs []Recording, truncated bool, err error) {
	var out struct {
		Recordings []Recording `json:"recordings"`
		Truncated  bool        `json:"truncated"`
	}
	if err := c.Do(ctx, "GET", "/api/v1/recordings", nil, &out); err != nil {
		return nil, false, err
	}
	return out.Recordings, out.Truncated, nil
}

// DownloadRecording streams the recording of session id, encrypted as the
// gateway stores it, to w and returns the bytes written. It fails on a
// recording over MaxRecordingBytes and on one that arrives shorter than
// announced; w may then hold a prefix. The gateway audits the download.
func (c *Client) DownloadRecording(ctx context.Context, id string, w io.Writer) (int64, error) {
	if id == "" {
		return 0, errors.New("recording id is empty")
	}
	n, err := c.stream(ctx, "/api/v1/recordings/"+url.PathEscape(id), w, MaxRecordingBytes)
	if err != nil {
		return n, fmt.Errorf("downloading recording %s: %w", id, err)
	}
	return n, nil
}

// NoteRecording tells the gateway's audit log what the reviewer did with
// the recording of session id: action is "open", "export" or "evidence";
// detail (at most 1024 bytes) says more, and must hold no secret.
func (c *Client) NoteRecording(ctx context.Context, id, action, detail string) error {
	if id == "" {
		return errors.New("recording id is empty")
	}
	return c.Do(ctx, "POST", "/api/v1/recordings/"+url.PathEscape(id)+"/audit",
		map[string]string{"action": action, "detail": detail}, nil)
}

// Evidence fetches the audit-log slice of session id, as the gateway sends
// it: JSON that audit.VerifySlice checks offline against a trusted key.
// Auditors only; the gateway audits the fetch.
func (c *Client) Evidence(ctx context.Context, id string) (json.RawMessage, error) {
	if id == "" {
		return nil, errors.New("recording id is empty")
	}
	var buf bytes.Buffer
	if _, err := c.stream(ctx, "/api/v1/recordings/"+url.PathEscape(id)+"/evidence", &buf, MaxEvidenceBytes); err != nil {
		return nil, fmt.Errorf("fetching evidence of %s: %w", id, err)
	}
	if !json.Valid(buf.Bytes()) {
		return nil, fmt.Errorf("fetching evidence of %s: the answer is not JSON", id)
	}
	return buf.Bytes(), nil
}

// stream GETs path and copies the answer's body, which must be a 200 of at
// most limit bytes, to w. Instead of the client's overall timeout, it gives
// up when nothing arrives for StreamIdleTimeout.
func (c *Client) stream(ctx context.Context, path string, w io.Writer, limit int64) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hc := *c.HTTP // same transport and connections, no overall timeout
	hc.Timeout = 0
	var idle atomic.Bool
	timer := time.AfterFunc(StreamIdleTimeout, func() { idle.Store(true); cancel() })
	defer timer.Stop()
	resp, err := c.send(ctx, &hc, "GET", path, nil)
	if err != nil {
		if idle.Load() {
			return 0, fmt.Errorf("no answer for %v", StreamIdleTimeout)
		}
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("unexpected answer %s", resp.Status)
	}
	if resp.ContentLength > limit {
		return 0, fmt.Errorf("the answer is %d bytes, over the limit of %d", resp.ContentLength, limit)
	}
	body := &idleReader{r: io.LimitReader(resp.Body, limit+1), timer: timer}
	n, err := io.Copy(w, body)
	switch {
	case err != nil && idle.Load():
		return n, fmt.Errorf("nothing received for %v after %d bytes", StreamIdleTimeout, n)
	case err != nil:
		return n, err
	case n > limit:
		return n, fmt.Errorf("the answer is over the limit of %d bytes", limit)
	case resp.ContentLength >= 0 && n != resp.ContentLength:
		return n, fmt.Errorf("cut short: got %d of %d bytes", n, resp.ContentLength)
	}
	return n, nil
}

// idleReader restarts timer, which ends the transfer, on every read that
// brings data.
type idleReader struct {
	r     io.Reader
	timer *time.Timer
}

func (ir *idleReader) Read(p []byte) (int, error) {
	n, err := ir.r.Read(p)
	if n > 0 {
		ir.timer.Reset(StreamIdleTimeout)
	}
	return n, err
}
