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

// termWindow reads the terminal records of channel ch up to time to;
// other channels' are skipped. With after == 0 it starts from the
// channel's last keyframe at or before from (returned to reset the
// screen), so the records up to from rebuild the screen at from. With
// screen set as well, those records are played here on the recorder's
// screen model instead of returned, and the keyframe is the screen at
// from: a seek then draws one screenful in the browser rather than
// replaying up to a checkpoint interval of output through xterm.js. With
// after > 0 it continues after record number after, which was at time
// from.
func termWindow(r *recorder.Reader, ch int, from, to time.Duration, after uint64, screen bool) window {
	out := window{Records: []termRecord{}}
	kf, err := r.SeekChannel(ch, from)
	if err != nil {
		out.Stop = damage(err)
		return out
	}
	if kf != nil && kf.Seq > after {
		out.Keyframe = &termRecord{Seq: kf.Seq, MS: kf.Time.Milliseconds(), Kind: "f", Data: kf.Data, Cols: termCols(kf.Cols), Rows: termRows(kf.Rows)}
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
		if rec.Seq <= after || rec.Type.IsTerminal() && rec.Channel != ch {
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
			out.Records = append(out.Records, termRecord{Seq: rec.Seq, MS: rec.Time.Milliseconds(), Kind: "r", Cols: termCols(rec.Cols), Rows: termRows(rec.Rows)})
		}
	}
}

// maxTermSize is the largest width or height the recorder's screen model
// (recorder/vt) takes; it clamps larger ones to it, and sizes of 0 to
// 80x24. The browser gets the sizes clamped the same way.
const maxTermSize = 1000

func termCols(n int) int { return clampTerm(n, 80) }
func termRows(n int) int { return clampTerm(n, 24) }

func clampTerm(n, def int) int {
	if n <= 0 {
		return def
	}
	return min(n, maxTermSize)
}

// screenAt plays records on the screen model the recorder takes its
// keyframes from, starting at a keyframe or, without one, on the blank
// 80x24 screen a recording starts with.
//
// A run of resizes without output between them (a window being dragged)
// is applied as at most three resizes when the next output or the
// keyframe needs the screen (see flush): each resize of a large screen
// allocates all of its cells.
type screenAt struct {
	vt  *vt.Screen
	seq uint64        // the last record played, or the keyframe; 0 for none
	t   time.Duration // its time

	pending      bool // resizes wait in minC..lastR
	changed      bool // one of them changes the size
	minC, minR   int  // the smallest width and height among them
	lastC, lastR int  // the last of them
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
		s.flush()
		s.vt.Write(rec.Data)
	case recorder.TypeResize:
		s.resize(termCols(rec.Cols), termRows(rec.Rows))
	}
	s.seq, s.t = rec.Seq, rec.Time
}

// resize adds a resize to the pending run.
func (s *screenAt) resize(cols, rows int) {
	if !s.pending {
		s.pending, s.changed = true, false
		s.minC, s.minR = cols, rows
		s.lastC, s.lastR = s.vt.Size()
	}
	s.changed = s.changed || cols != s.lastC || rows != s.lastR
	s.minC, s.minR = min(s.minC, cols), min(s.minR, rows)
	s.lastC, s.lastR = cols, rows
}

// flush applies the pending resizes. The screen ends as the resizes one
// by one would leave it: a resize crops each line to its width, and
// scrolls the lines up so the cursor stays on the screen, and lines left
// out are gone for the resizes after it; so the run crops to its smallest
// width and height (scrolling as far as the smallest height asks), then
// takes the last size. The first resize that changes the size also leaves
// the alternate screen and resets the margins: when neither of those two
// does, growing by a row and back does, losing nothing.
func (s *screenAt) flush() {
	if !s.pending {
		return
	}
	s.pending = false
	if !s.changed {
		return
	}
	cols, rows := s.vt.Size()
	if s.minC == cols && s.minR == rows && s.lastC == cols && s.lastR == rows {
		if rows < maxTermSize {
			s.vt.Resize(cols, rows+1)
		} else {
			s.vt.Resize(cols+1, rows)
		}
	}
	s.vt.Resize(s.minC, s.minR)
	s.vt.Resize(s.lastC, s.lastR)
}

// keyframe returns the screen as a keyframe record.
func (s *screenAt) keyframe() *termRecord {
	s.flush()
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
