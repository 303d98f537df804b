package recorder

import "supportgate/recorder/vt"

const (
	// backlogMax bounds the terminal output kept between keyframes.
	backlogMax = 256 << 10
	// backlogKeep is what remains when the backlog overflows: enough for
	// any screenful of scrolling output.
	backlogKeep = 64 << 10
)

// termState tracks the terminal screen for keyframes. Output is appended to
// a bounded backlog and interpreted only when a keyframe is due or the size
// changes, which keeps the screen model off the hot path. When more than
// backlogMax bytes arrive between keyframes, the screen is rebuilt from the
// last backlogKeep bytes on a cleared screen: exact for scrolling output,
// approximate for a full-screen program that produced that much output.
type termState struct {
	screen     *vt.Screen // made on first use, 80x24
	backlog    []byte
	overflowed bool
	dirty      bool // changed since the last keyframe
}

func (t *termState) write(p []byte) {
	t.dirty = true
	if len(t.backlog)+len(p) > backlogMax {
		t.overflowed = true
		if len(p) >= backlogKeep {
			t.backlog = append(t.backlog[:0], p[len(p)-backlogKeep:]...)
			return
		}
		keep := backlogKeep - len(p)
		n := copy(t.backlog, t.backlog[len(t.backlog)-keep:])
		t.backlog = t.backlog[:n]
	}
	t.backlog = append(t.backlog, p...)
}

// catchUp feeds the backlog to the screen model.
func (t *termState) catchUp() {
	if t.screen == nil {
		t.screen = vt.New(80, 24)
	}
	if t.overflowed {
		t.screen.Reset()
		t.overflowed = false
	}
	t.screen.Write(t.backlog)
	t.backlog = t.backlog[:0]
}

func (t *termState) resize(cols, rows int) {
	t.catchUp()
	t.screen.Resize(cols, rows)
	t.dirty = true
}

// size returns the screen's size.
func (t *termState) size() (cols, rows int) {
	t.catchUp()
	return t.screen.Size()
}

// keyframe returns the current screen as escape sequences.
func (t *termState) keyframe() []byte {
	t.catchUp()
	t.dirty = false
	return t.screen.Snapshot()
}
