package review

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"supportgate/recorder"
	"supportgate/recorder/vt"
)

// resizeOps are outputs that move the cursor, draw wide characters, set a
// scroll region or switch screens, so that resizes have something to crop.
var resizeOps = []string{
	"hello world, a line of text that is long enough to be cropped\r\n",
	"東京東京東京東京東京東京東京東京東京東京東京東京東京東京東京東京東京東京東京東京\r\n",
	"\x1b[?1049h", "\x1b[?1049l", "\x1b[3;7r", "\x1b[r", "\x1b[1;1H", "\x1b[40;70H",
	"\x1b[99;199H*", "\x1b7", "\x1b8X", "\x1b[1;31mred\x1b[0m", "\n\n\n\n\n", "\x1b[2J",
}

// compareResizes plays ops (an output, or a resize to cols x rows) both
// through screenAt and one by one on a vt.Screen, and fails where the two
// differ.
func compareResizes(t *testing.T, ops []resizeOp) {
	t.Helper()
	naive := vt.New(80, 24)
	at := newScreenAt(nil)
	var log bytes.Buffer
	for i, op := range ops {
		rec := recorder.Record{Seq: uint64(i + 1), Type: recorder.TypeResize, Cols: op.cols, Rows: op.rows}
		if op.out != "" {
			rec.Type, rec.Data = recorder.TypeOutput, []byte(op.out)
			naive.Write(rec.Data)
			fmt.Fprintf(&log, "out %q\n", op.out)
		} else {
			naive.Resize(op.cols, op.rows)
			fmt.Fprintf(&log, "resize %dx%d\n", op.cols, op.rows)
		}
		at.play(&rec)
	}
	check := func(when string) {
		t.Helper()
		kf := at.keyframe()
		cols, rows := naive.Size()
		if kf.Cols != cols || kf.Rows != rows || !bytes.Equal(kf.Data, naive.Snapshot()) {
			t.Fatalf("%s: coalesced %dx%d %q, one by one %dx%d %q\nafter:\n%s", when, kf.Cols, kf.Rows, kf.Data, cols, rows, naive.Snapshot(), log.String())
		}
		x, y := at.vt.Cursor()
		if nx, ny := naive.Cursor(); nx != x || ny != y {
			t.Fatalf("%s: cursor coalesced %d,%d, one by one %d,%d\nafter:\n%s", when, x, y, nx, ny, log.String())
		}
	}
	check("at the end")
	// State a snapshot may not show: the alternate screen, the margins,
	// the saved cursor.
	const more = "\x1b[?1049l\x1b[99;1Hx\n\n\n\n\x1b8y"
	naive.Write([]byte(more))
	at.vt.Write([]byte(more))
	check("after more output")
}

type resizeOp struct {
	out        string
	cols, rows int
}

// TestScreenAtCoalescesResizes checks that a run of resizes applied
// together leaves the screen as applying them one by one does.
func TestScreenAtCoalescesResizes(t *testing.T) {
	for _, tt := range []struct {
		name string
		ops  []resizeOp
	}{
		{"shrink then grow", []resizeOp{{out: resizeOps[0]}, {out: resizeOps[1]}, {cols: 10, rows: 3}, {cols: 120, rows: 40}}},
		{"away and back", []resizeOp{{out: "\x1b[?1049h\x1b[3;7r"}, {cols: 100, rows: 30}, {cols: 80, rows: 24}, {out: "\x1b[20;1Hx\n\n\n\n\n\n"}}},
		{"away and back at the limit", []resizeOp{{cols: 1000, rows: 1000}, {out: "\x1b[?1049h\x1b[3;7r"}, {cols: 999, rows: 1000}, {cols: 1000, rows: 1000}}},
		{"no change", []resizeOp{{out: "\x1b[?1049hx"}, {cols: 80, rows: 24}, {cols: 0, rows: 0}}},
		{"scroll up", []resizeOp{{out: "\x1b[20;5Habc"}, {cols: 80, rows: 12}, {cols: 80, rows: 5}, {cols: 80, rows: 30}}},
		{"wide character cut", []resizeOp{{out: resizeOps[1]}, {cols: 11, rows: 24}, {cols: 7, rows: 24}, {cols: 80, rows: 24}}},
		{"out of range", []resizeOp{{cols: 5000, rows: -1}, {out: "x"}, {cols: 0, rows: 70000}}},
	} {
		t.Run(tt.name, func(t *testing.T) { compareResizes(t, tt.ops) })
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 300 {
		t.Run(fmt.Sprintf("random %d", n), func(t *testing.T) {
			var ops []resizeOp
			for range rng.IntN(30) {
				if rng.IntN(2) == 0 {
					ops = append(ops, resizeOp{out: resizeOps[rng.IntN(len(resizeOps))]})
					continue
				}
				size := func() int {
					switch rng.IntN(10) {
					case 0:
						return 0
					case 1:
						return 1200
					}
					return 1 + rng.IntN(120)
				}
				ops = append(ops, resizeOp{cols: size(), rows: size()})
			}
			compareResizes(t, ops)
		})
	}
}

// TestScreenAtResizeCost checks that a seek across a window being dragged
// at a large size costs a few screens of memory, not one per resize.
func TestScreenAtResizeCost(t *testing.T) {
	const n, size = 200, 400
	screen := func() uint64 {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		vt.New(size, size)
		runtime.ReadMemStats(&m1)
		return m1.TotalAlloc - m0.TotalAlloc
	}()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	at := newScreenAt(nil)
	at.play(&recorder.Record{Seq: 1, Type: recorder.TypeOutput, Data: []byte("x")})
	for i := range n {
		at.play(&recorder.Record{Seq: uint64(i + 2), Type: recorder.TypeResize, Cols: size - i%2, Rows: size})
	}
	at.keyframe()
	runtime.ReadMemStats(&m1)
	got := m1.TotalAlloc - m0.TotalAlloc
	t.Logf("%d resizes at %dx%d: %d bytes, %.1f screens", n, size, size, got, float64(got)/float64(screen))
	if got > 5*screen {
		t.Errorf("%d resizes allocated %d bytes, %.1f screens of %d bytes; want at most 5", n, got, float64(got)/float64(screen), screen)
	}
}

// TestTermSizesClamped checks that the browser gets sizes the recorder's
// screen model would take.
func TestTermSizesClamped(t *testing.T) {
	for _, tt := range []struct{ cols, rows, wantC, wantR int }{
		{80, 24, 80, 24}, {1000, 1000, 1000, 1000}, {1001, 65535, 1000, 1000}, {0, 0, 80, 24}, {-5, 7, 80, 7},
	} {
		if c, r := termCols(tt.cols), termRows(tt.rows); c != tt.wantC || r != tt.wantR {
			t.Errorf("size %dx%d: got %dx%d, want %dx%d", tt.cols, tt.rows, c, r, tt.wantC, tt.wantR)
		}
		s := vt.New(tt.cols, tt.rows)
		if c, r := s.Size(); c != tt.wantC || r != tt.wantR {
			t.Errorf("vt.New(%d, %d) is %dx%d, the player says %dx%d", tt.cols, tt.rows, c, r, tt.wantC, tt.wantR)
		}
	}
}
