package bastion_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"supportgate/recorder"
	"supportgate/recorder/vt"
)

// TestTwoShellsRecordedApart: an agent with two shells open at once in one
// session, both printing at the same time. Each shell's channel is
// recorded apart: its asciicast export and its screen after a seek show
// its own lines, whole, and none of the other's; the channel numbers of
// the records are the ones the ssh.shell events name. Before, both shells
// went into one terminal stream, their lines mixed.
func TestTwoShellsRecordedApart(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.addUser("alice", "agent", "t1")
	s := e.newSession("alice", "shell", 30*time.Minute)
	alice := e.certFor("alice")

	names := []string{"AAAA", "BBBB"}
	shells := make([]*ptySSH, 2)
	for i := range shells {
		shells[i] = e.startPTY(t, alice, s.ID)
		shells[i].expect(t, "This session is recorded")
	}
	// Both loops run at once; each line is written in two pieces, so that
	// a shared stream would tear it.
	for i, p := range shells {
		n := names[i]
		p.send(fmt.Sprintf("for i in 1 2 3 4 5 6 7 8 9 10 11 12; do printf '%s-%%s-' $i; sleep 0.02; printf 'end\\n'; done; echo %s-$((6*7))-done\r", n, strings.ToLower(n)))
	}
	for i, p := range shells {
		p.expect(t, strings.ToLower(names[i])+"-42-done")
	}

	r := e.endedRecording(t, s)
	defer r.Close()

	// Which channel each shell is: the ssh.shell events name them.
	var chans []int
	for {
		rec, err := r.Next()
		if err != nil {
			break
		}
		if rec.Type == recorder.TypeEvent && rec.Kind == "ssh.shell" {
			n, err := strconv.Atoi(rec.Detail["channel_id"])
			if err != nil {
				t.Fatalf("ssh.shell event without a channel_id: %v", rec.Detail)
			}
			chans = append(chans, n)
		}
	}
	if len(chans) != 2 || chans[0] == chans[1] {
		t.Fatalf("ssh.shell events name channels %v, want two different ones", chans)
	}
	if got := r.FirstTerminal(); got != chans[0] {
		t.Errorf("FirstTerminal: got %d, want the first shell's channel %d", got, chans[0])
	}

	for i, ch := range chans {
		// Which loop ran on which channel depends on which shell's
		// channel was opened first: find it by its output.
		text := castText(t, r, ch)
		mine, other := names[0], names[1]
		if !strings.Contains(text, mine+"-1-") {
			mine, other = other, mine
		}
		for k := 1; k <= 12; k++ {
			if line := fmt.Sprintf("%s-%d-end\r\n", mine, k); !strings.Contains(text, line) {
				t.Errorf("channel %d (shell %d) lacks the whole line %q:\n%s", ch, i+1, line, text)
			}
		}
		if strings.Contains(text, other+"-") {
			t.Errorf("channel %d holds the other shell's %s lines:\n%s", ch, other, text)
		}
		// The screen at the end, rebuilt from the channel's last keyframe.
		kf, err := r.SeekChannel(ch, time.Hour)
		if err != nil || kf == nil {
			t.Fatalf("channel %d: seek to the end: %v, %v; want its last keyframe", ch, kf, err)
		}
		scr := vt.New(kf.Cols, kf.Rows)
		scr.Write(kf.Data)
		if got := scr.String(); !strings.Contains(got, mine+"-12-end") || strings.Contains(got, other+"-") {
			t.Errorf("channel %d's last keyframe:\n%s\nwant %s's lines only", ch, got, mine)
		}
	}
}

// castText exports channel ch as asciicast and returns its output events
// joined.
func castText(t *testing.T, r *recorder.Reader, ch int) string {
	t.Helper()
	var cast bytes.Buffer
	var warned []string
	if err := recorder.ExportAsciicast(&cast, r, recorder.ExportOptions{Channel: &ch, Warn: func(m string) { warned = append(warned, m) }}); err != nil {
		t.Fatal(err)
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "left out channel") {
		t.Errorf("channel %d: warnings %q, want one naming the channel left out", ch, warned)
	}
	var text strings.Builder
	for i, line := range strings.Split(strings.TrimSpace(cast.String()), "\n") {
		if i == 0 {
			continue // the header
		}
		var ev []any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("asciicast line %q: %v", line, err)
		}
		if ev[1] == "o" {
			text.WriteString(ev[2].(string))
		}
	}
	return text.String()
}

// TestSupervisorWatchesOneChannel: a supervisor watching while the agent
// has two shells sees the first shell's output alone, is told of the
// other, and is moved to it, its screen drawn, when the first closes.
// Before, both shells' output came interleaved on the supervisor's one
// terminal.
func TestSupervisorWatchesOneChannel(t *testing.T) {
	e, s, first, sv := watchedShell(t)
	first.send("echo first-$((6*7))\r")
	sv.expect(t, "first-42")

	second := e.startPTY(t, e.certFor("alice"), s.ID)
	second.expect(t, "This session is recorded")
	second.send("echo second-$((6*7))\r")
	second.expect(t, "second-42")
	sv.expect(t, "another channel")
	first.send("echo first-again\r")
	sv.expect(t, "first-again")
	if strings.Contains(sv.out.String(), "second-42") {
		t.Fatalf("the supervisor's view of the first shell shows the second's output:\n%s", sv.out.String())
	}

	first.send("exit\r")
	sv.expect(t, "closed; now showing channel")
	sv.expect(t, "second-42") // its screen
	second.send("echo second-now-$((6*7))\r")
	sv.expect(t, "second-now-42")
}
