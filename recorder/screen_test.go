package recorder_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"supportgate/recorder"
	"supportgate/recorder/recordertest"
	"supportgate/recorder/vt"
)

// TestScreen: a channel's screen as a supervisor starting to watch gets
// it, while two channels write: each redraw, replayed on a terminal, shows
// its own channel's lines only, each whole, consecutive and ending with
// the last line written before it; the status is drawn over the top line.
// Run with -race: the screen is rendered while output is recorded.
func TestScreen(t *testing.T) {
	k := recordertest.NewKeys(t)
	cfg := recordertest.Config(k, recordertest.NewClock(t0))
	w, err := recorder.Create(filepath.Join(t.TempDir(), "s.sgrec"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Screen(1, ""); !errors.Is(err, recorder.ErrNoChannel) {
		t.Errorf("screen of a channel without records: got %v, want ErrNoChannel", err)
	}
	if err := w.ResizeOn(2, 60, 8); err != nil {
		t.Fatal(err)
	}
	const lines = 2000
	var written [3]sync.Mutex // held by the writer of channel ch while it writes
	var last [3]int           // the last line written on channel ch, under written[ch]
	var wg sync.WaitGroup
	for ch := 1; ch <= 2; ch++ {
		wg.Go(func() {
			for i := 1; i <= lines; i++ {
				written[ch].Lock()
				// One line in two writes: a redraw must never show half.
				if err := w.OutputOn(ch, fmt.Appendf(nil, "c%d-%05d-", ch, i)); err != nil {
					t.Error(err)
				}
				if err := w.OutputOn(ch, []byte("end\r\n")); err != nil {
					t.Error(err)
				}
				last[ch] = i
				written[ch].Unlock()
			}
		})
	}
	line := regexp.MustCompile(`^c(\d)-(\d{5})-(end)?$`)
	for ch := 1; ch <= 2; ch++ {
		wg.Go(func() {
			for range 300 {
				written[ch].Lock()
				before := last[ch]
				scr, err := w.Screen(ch, "")
				written[ch].Unlock()
				if errors.Is(err, recorder.ErrNoChannel) && before == 0 {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if want := map[int][2]int{1: {80, 24}, 2: {60, 8}}[ch]; scr.Cols != want[0] || scr.Rows != want[1] {
					t.Errorf("channel %d: size %dx%d, want %dx%d", ch, scr.Cols, scr.Rows, want[0], want[1])
				}
				term := vt.New(scr.Cols, scr.Rows)
				term.Write([]byte("\x1b[?1049hstale")) // a terminal that showed something else
				term.Write(scr.Redraw)
				prev := 0
				for y := range scr.Rows {
					l := term.Line(y)
					if l == "" {
						continue
					}
					m := line.FindStringSubmatch(l)
					if m == nil || m[1] != strconv.Itoa(ch) || m[3] == "" {
						t.Errorf("channel %d: line %q of its screen is not one of its whole lines:\n%s", ch, l, term.String())
						return
					}
					n, _ := strconv.Atoi(m[2])
					if prev != 0 && n != prev+1 {
						t.Errorf("channel %d: line %d follows %d:\n%s", ch, n, prev, term.String())
						return
					}
					prev = n
				}
				if prev != before {
					t.Errorf("channel %d: the screen ends with line %d, want %d, the last written before it", ch, prev, before)
					return
				}
			}
		})
	}
	wg.Wait()

	scr, err := w.Screen(2, "[watching channel 2]")
	if err != nil {
		t.Fatal(err)
	}
	term := vt.New(scr.Cols, scr.Rows)
	term.Write(scr.Redraw)
	if got := term.Line(0); !strings.HasPrefix(got, "[watching channel 2]") {
		t.Errorf("top line: got %q, want the status", got)
	}
	if got, want := term.Line(scr.Rows-2), fmt.Sprintf("c2-%05d-end", lines); got != want {
		t.Errorf("last line: got %q, want %q", got, want)
	}

	if err := w.EndChannel(2); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Screen(2, ""); !errors.Is(err, recorder.ErrNoChannel) {
		t.Errorf("screen of an ended channel: got %v, want ErrNoChannel", err)
	}
	w.Close()
	if _, err := w.Screen(1, ""); !errors.Is(err, recorder.ErrClosed) {
		t.Errorf("screen after Close: got %v, want ErrClosed", err)
	}
}

// TestScreenRedacted: the screen is the recording's, so a card number is
// masked in it as in the recorded output.
func TestScreenRedacted(t *testing.T) {
	k := recordertest.NewKeys(t)
	w, err := recorder.Create(filepath.Join(t.TempDir(), "r.sgrec"), recordertest.Config(k, recordertest.NewClock(t0)))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.OutputOn(1, []byte("card 4111 1111 1111 1111 ok\r\n$ ")); err != nil {
		t.Fatal(err)
	}
	scr, err := w.Screen(1, "")
	if err != nil {
		t.Fatal(err)
	}
	term := vt.New(scr.Cols, scr.Rows)
	term.Write(scr.Redraw)
	if got := term.String(); strings.Contains(got, "4111 1111 1111 1111") || !strings.Contains(got, "card ") {
		t.Errorf("screen: got %q, want the card number masked", got)
	}
}

// TestScreenHeld: a card number that may go on in the next write is
// held back from the screen and comes apart, masked, in Held; the screen
// has it once the number ends.
func TestScreenHeld(t *testing.T) {
	k := recordertest.NewKeys(t)
	w, err := recorder.Create(filepath.Join(t.TempDir(), "h.sgrec"), recordertest.Config(k, recordertest.NewClock(t0)))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.OutputOn(1, []byte("$ pay 4111 1111 1111 1111")); err != nil {
		t.Fatal(err)
	}
	scr, err := w.Screen(1, "")
	if err != nil {
		t.Fatal(err)
	}
	if string(scr.Held) != "**** **** **** 1111" {
		t.Errorf("held: got %q, want the card number masked", scr.Held)
	}
	term := vt.New(scr.Cols, scr.Rows)
	term.Write(scr.Redraw)
	term.Write(scr.Held)
	if got := term.Line(0); got != "$ pay **** **** **** 1111" {
		t.Errorf("redraw and held: got %q", got)
	}
	if err := w.OutputOn(1, []byte(" ok\r\n")); err != nil {
		t.Fatal(err)
	}
	if scr, err = w.Screen(1, ""); err != nil || len(scr.Held) != 0 {
		t.Fatalf("after the number ended: held %q, %v; want none", scr.Held, err)
	}
	term = vt.New(scr.Cols, scr.Rows)
	term.Write(scr.Redraw)
	if got := term.Line(0); got != "$ pay **** **** **** 1111 ok" {
		t.Errorf("screen after the number ended: got %q", got)
	}
}
