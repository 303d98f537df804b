package review

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"supportgate/recorder"
	"supportgate/recorder/vt"
)

// maxWindowBytes caps the terminal bytes of one window; the player asks
// for the rest with the next request.
const maxWindowBytes = 2 << 20

// termRecord is one terminal record as the player receives it.
type termRecord struct {
	Seq  uint64 `json:"s"`
	MS   int64  `json:"t"`
	Kind string `json:"k"` // "o" output, "r" resize, "f" screen keyframe
	Data []byte `json:"d,omitempty"`
	Cols int    `json:"c,omitempty"`
	Rows int    `json:"r,omitempty"`
}

// window is a stretch of a recording's terminal: an optional keyframe to
// reset the screen to, then the records after it.
type window struct {
	Keyframe *termRecord  `json:"keyframe"`
	Records  []termRecord `json:"records"`
	// End is set when the recording has no records after this window.
	End bool `json:"end"`
	// Stop is the verifier's finding when damage ends the readable part.
	Stop string `json:"stop,omitempty"`
}

// termWindow reads the terminal records up to time to. With after == 0 it
// starts from the last keyframe at or before from (returned to reset the
// screen), so the records up to from rebuild the screen at from. With
// screen set as well, those records are played here on the recorder's
// screen model instead of returned, and the keyframe is the screen at
// from: a seek then draws one screenful in the browser rather than
// replaying up to a checkpoint interval of output through xterm.js. With
// after > 0 it continues after record number after, which was at time
// from.
func termWindow(r *recorder.Reader, from, to time.Duration, after uint64, screen bool) window {
	out := window{Records: []termRecord{}}
	kf, err := r.Seek(from)
	if err != nil {
		out.Stop = damage(err)
		return out
	}
	if kf != nil && kf.Seq > after {
		out.Keyframe = &termRecord{Seq: kf.Seq, MS: kf.Time.Milliseconds(), Kind: "f", Data: kf.Data, Cols: kf.Cols, Rows: kf.Rows}
	}
	var at *screenAt
	if screen && after == 0 {
		at = newScreenAt(kf)
	}
	// settle ends the records played on the screen model.
	settle := func() {
		if at != nil && at.seq > 0 {
			out.Keyframe = at.keyframe()
		}
		at = nil
	}
	size := 0
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			settle()
			out.End = true
			return out
		}
		if err != nil {
			settle()
			out.Stop = damage(err)
			out.End = true
			return out
		}
		if rec.Seq <= after {
			continue
		}
		if at != nil {
			if rec.Time <= from {
				at.play(&rec)
				continue
			}
			settle()
		}
		if rec.Time > to || size > maxWindowBytes {
			return out
		}
		switch rec.Type {
		case recorder.TypeOutput:
			size += len(rec.Data)
			out.Records = append(out.Records, termRecord{Seq: rec.Seq, MS: rec.Time.Milliseconds(), Kind: "o", Data: append([]byte(nil), rec.Data...)})
		case recorder.TypeResize:
			out.Records = append(out.Records, termRecord{Seq: rec.Seq, MS: rec.Time.Milliseconds(), Kind: "r", Cols: rec.Cols, Rows: rec.Rows})
		}
	}
}

// screenAt plays records on the screen model the recorder takes its
// keyframes from, starting at a keyframe or, without one, on the blank
// 80x24 screen a recording starts with.
type screenAt struct {
	vt  *vt.Screen
	seq uint64        // the last record played, or the keyframe; 0 for none
	t   time.Duration // its time
}

func newScreenAt(kf *recorder.Record) *screenAt {
	if kf == nil {
		return &screenAt{vt: vt.New(80, 24)}
	}
	s := &screenAt{vt: vt.New(kf.Cols, kf.Rows), seq: kf.Seq, t: kf.Time}
	s.vt.Write(kf.Data)
	return s
}

func (s *screenAt) play(rec *recorder.Record) {
	switch rec.Type {
	case recorder.TypeOutput:
		s.vt.Write(rec.Data)
	case recorder.TypeResize:
		s.vt.Resize(rec.Cols, rec.Rows)
	}
	s.seq, s.t = rec.Seq, rec.Time
}

// keyframe returns the screen as a keyframe record.
func (s *screenAt) keyframe() *termRecord {
	cols, rows := s.vt.Size()
	return &termRecord{Seq: s.seq, MS: s.t.Milliseconds(), Kind: "f", Data: s.vt.Snapshot(), Cols: cols, Rows: rows}
}

// damage says in the verifier's words why reading stopped.
func damage(err error) string {
	var te *recorder.TamperError
	var ce *recorder.CutShortError
	switch {
	case errors.As(err, &te):
		return fmt.Sprintf("tampered at record %d: %s", te.Record, te.Reason)
	case errors.As(err, &ce):
		return "cut short: " + strings.TrimPrefix(ce.Error(), "recorder: ")
	}
	return strings.TrimPrefix(err.Error(), "recorder: ")
}
