package bastion_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"supportgate/gateway"
	"supportgate/recorder"
	"supportgate/recorder/vt"
)

// TestSupervisorPicksChannel: an agent has two shells, each showing a
// screen of its own; a supervisor joining afterwards sees the first
// shell's screen at once, where it is on the screen, with no new output;
// "]" shows the second's screen (the status line says its size differs
// from the supervisor's window), then its live output and not the
// first's; an arrow key switches nothing; "1" goes back; "?" shows the
// keys. What the supervisor types reaches neither shell nor the
// recording's input records, which hold the agent's. Each switch is
// audited and recorded. Before, the supervisor saw nothing until the
// first shell printed again, and could not leave it.
func TestSupervisorPicksChannel(t *testing.T) {
	e := newEnv(t, envOptions{recording: gateway.RecordingConfig{RecordInput: true}})
	e.addUser("alice", "agent", "t1")
	e.addUser("sue", "supervisor", "t1")
	s := e.newSession("alice", "shell", 30*time.Minute)
	alice := e.certFor("alice")
	first := e.startPTY(t, alice, s.ID)
	first.expect(t, "This session is recorded")
	first.send("printf '\\033[2J\\033[5;10HFIRST-SCREEN-%s\\n' $((6*7))\r")
	first.expect(t, "FIRST-SCREEN-42")
	second := e.startPTYSize(t, alice, s.ID, 100, 30)
	second.expect(t, "This session is recorded")
	second.send("printf '\\033[2J\\033[3;3HSECOND-SCREEN-%s\\n' $((6*7))\r")
	second.expect(t, "SECOND-SCREEN-42")

	sv := e.startPTY(t, e.certFor("sue"), s.ID)
	sv.expect(t, "read-only as supervisor sue")
	sv.expect(t, "] or Tab: next channel")
	sv.expect(t, "FIRST-SCREEN-42")
	sv.expect(t, "(1 of 2 open)")
	term := vt.New(80, 24)
	term.Write([]byte(sv.out.String()))
	if got := term.Line(4); !strings.HasPrefix(got, strings.Repeat(" ", 9)+"FIRST-SCREEN-42") {
		t.Errorf("the supervisor's line 5: got %q, want FIRST-SCREEN-42 from column 10, where the shell drew it\nscreen:\n%s", got, term.String())
	}
	if strings.Contains(sv.out.String(), "SECOND-SCREEN") {
		t.Fatalf("the supervisor sees the second shell before switching:\n%s", sv.out.String())
	}

	sv.send("]")
	sv.expect(t, "SECOND-SCREEN-42")
	sv.expect(t, "(2 of 2 open); it is 100x30, this window 80x24")
	second.send("echo live-$((6*7))\r")
	sv.expect(t, "live-42")
	first.send("echo first-hidden-$((6*7))\r")
	first.expect(t, "first-hidden-42")

	// Keys that are not the watch's: text, an arrow key (ESC [ A, not a
	// '['), a function key (ESC [ 1 5 ~, not a '1').
	sv.send("echo sneaky-typed\r\x1b[A\x1b[15~")
	second.send("echo marker-$((6*7))\r")
	second.expect(t, "marker-42")
	sv.expect(t, "marker-42") // still on the second shell
	if strings.Contains(sv.out.String(), "first-hidden-42") {
		t.Errorf("the supervisor watching the second shell sees the first's output:\n%s", sv.out.String())
	}

	sv.send("1")
	sv.expect(t, "first-hidden-42") // in the first shell's screen, drawn again
	sv.send("?")
	sv.expect(t, "1-9: n-th open")

	for i, p := range []*ptySSH{first, second} {
		if strings.Contains(p.out.String(), "sneaky") {
			t.Errorf("shell %d shows what the supervisor typed:\n%s", i+1, p.out.String())
		}
	}
	if !waitFor(5*time.Second, func() bool { return len(e.auditEvents("session.watch_switched")) == 2 }) {
		t.Errorf("session.watch_switched: got %+v, want two (] and 1)", e.auditEvents("session.watch_switched"))
	}
	var switchedTo []string
	for _, ev := range e.auditEvents("session.watch_switched") {
		if ev.Actor != "sue" || ev.Detail["channel"] != "watch" {
			t.Errorf("session.watch_switched: got %+v, want sue's, channel watch", ev)
		}
		switchedTo = append(switchedTo, ev.Detail["channel_id"])
	}

	r := e.endedRecording(t, s)
	defer r.Close()
	var input strings.Builder
	var recorded []string
	for {
		rec, err := r.Next()
		if err != nil {
			break
		}
		switch {
		case rec.Type == recorder.TypeInput:
			input.Write(rec.Data)
		case rec.Type == recorder.TypeEvent && rec.Kind == "ssh.watch_switched":
			if rec.Detail["supervisor"] != "sue" {
				t.Errorf("ssh.watch_switched: got %v, want supervisor sue", rec.Detail)
			}
			recorded = append(recorded, rec.Detail["channel_id"])
		}
	}
	if in := input.String(); !strings.Contains(in, "echo live") || strings.Contains(in, "sneaky") {
		t.Errorf("input records: got %q, want the agent's keys and none of the supervisor's", in)
	}
	if len(switchedTo) != 2 || !slices.Equal(recorded, switchedTo) || !regexp.MustCompile(`^\d+$`).MatchString(switchedTo[0]) {
		t.Errorf("switches: audited %v, recorded %v; want the same two channels", switchedTo, recorded)
	}
}

// TestSupervisorWatchCommand: "watch CHANNEL" starts the watch on that
// channel; a channel that is not open is said, and the first is shown;
// any other command is refused, saying what is accepted.
func TestSupervisorWatchCommand(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.addUser("alice", "agent", "t1")
	e.addUser("sue", "supervisor", "t1")
	s := e.newSession("alice", "shell", 30*time.Minute)
	alice := e.certFor("alice")
	for _, name := range []string{"ONE", "TWO"} {
		p := e.startPTY(t, alice, s.ID)
		p.expect(t, "This session is recorded")
		p.send("echo screen-" + name + "-$((6*7))\r")
		p.expect(t, "screen-"+name+"-42")
	}
	var ids []string
	for _, ev := range e.auditEvents("channel.opened") {
		ids = append(ids, ev.Detail["channel_id"])
	}
	if len(ids) != 2 {
		t.Fatalf("channel.opened: got channels %v, want two", ids)
	}

	sv := e.startPTYSize(t, e.certFor("sue"), s.ID, 80, 24, "watch", ids[1])
	sv.expect(t, "screen-TWO-42")
	sv.expect(t, "now showing channel "+ids[1]+" (2 of 2 open)")
	if strings.Contains(sv.out.String(), "screen-ONE") {
		t.Errorf("watch %s shows the first shell:\n%s", ids[1], sv.out.String())
	}

	sv2 := e.startPTYSize(t, e.certFor("sue"), s.ID, 80, 24, "watch", "999")
	sv2.expect(t, "channel 999 is not open; now showing channel "+ids[0])
	sv2.expect(t, "screen-ONE-42")

	_, errOut, err := e.run(e.certFor("sue"), s.ID, []string{"-tt"}, "cat", "/etc/passwd")
	if err == nil || !strings.Contains(errOut, `the one command is "watch [CHANNEL]"`) {
		t.Errorf("another command: got %v, stderr %q; want it refused, saying what is accepted", err, errOut)
	}
	var started []string
	for _, ev := range e.auditEvents("session.watched") {
		started = append(started, ev.Detail["channel_id"])
	}
	if want := []string{ids[1], ids[0]}; !slices.Equal(started, want) {
		t.Errorf("session.watched: got channels %v, want %v (the refused command watches nothing)", started, want)
	}
}

// TestSupervisorWatchFiltered: what the customer's machine prints reaches
// a supervisor's terminal through vt.Filter, as a replay does: a sequence
// that writes the clipboard (OSC 52) is left out, the text around it is
// not. The agent's own shell gets the output as it is.
func TestSupervisorWatchFiltered(t *testing.T) {
	_, _, p, sv := watchedShell(t)

	p.send("printf 'before\\033]52;c;ZWNobyBvd25lZA==\\007after-%s\\n' $((6*7))\r")
	p.expect(t, "after-42")
	sv.expect(t, "beforeafter-42")
	if strings.Contains(sv.out.String(), "\x1b]52") {
		t.Errorf("the clipboard sequence reached the supervisor's terminal: %q", sv.out.String())
	}
	if !strings.Contains(p.out.String(), "before\x1b]52;c;ZWNobyBvd25lZA==\aafter-42") {
		t.Errorf("the agent's shell did not get the output as printed: %q", p.out.String())
	}
}

// watchedShell starts a session in which the agent alice has a shell and
// the supervisor sue, of her team, watches it.
func watchedShell(t *testing.T) (e *env, s *testSession, agent, supervisor *ptySSH) {
	t.Helper()
	e = newEnv(t, envOptions{})
	e.addUser("alice", "agent", "t1")
	e.addUser("sue", "supervisor", "t1")
	s = e.newSession("alice", "shell", 30*time.Minute)
	agent = e.startPTY(t, e.certFor("alice"), s.ID)
	agent.expect(t, "This session is recorded")
	supervisor = e.startPTY(t, e.certFor("sue"), s.ID)
	supervisor.expect(t, "read-only as supervisor sue")
	agent.expect(t, "supervisor sue joined (read-only)")
	return e, s, agent, supervisor
}

// TestSupervisorQuitsWatch: a supervisor leaves the watch with q (as in
// a pager) or Ctrl-C; OpenSSH exits 0, the agent is told, and the watch's
// end is audited. The agent's shell goes on. Before, every key but the
// watch's was dropped, and only OpenSSH's escape (~.) ended it.
func TestSupervisorQuitsWatch(t *testing.T) {
	e, s, p, sv := watchedShell(t)
	for _, key := range []string{"q", "\x03"} {
		if key == "\x03" {
			sv = e.startPTY(t, e.certFor("sue"), s.ID)
			sv.expect(t, "read-only as supervisor sue")
		}
		sv.send(key)
		select {
		case err := <-sv.done:
			if err != nil {
				t.Errorf("after %q: OpenSSH ended with %v, want status 0", key, err)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("after %q: the watch went on:\n%s", key, sv.out.String())
		}
		sv.expect(t, "supportgate: watch ended")
	}
	p.expect(t, "supervisor sue left")
	watchesClosed := func() (n int) {
		for _, ev := range e.auditEvents("channel.closed") {
			if ev.Actor == "sue" && ev.Detail["channel"] == "watch" {
				n++
			}
		}
		return n
	}
	if !waitFor(5*time.Second, func() bool { return watchesClosed() == 2 }) {
		t.Errorf("channel.closed: got %+v, want the two watches' ends, by sue", e.auditEvents("channel.closed"))
	}
	p.send("echo still-$((6*7))\r")
	p.expect(t, "still-42")
}

// TestSupervisorSeesHeldBackOutput: with redaction patterns the recording
// holds a partial line back until its newline, and a card-number
// candidate until it ends. A supervisor who starts watching while the
// agent's prompt line is such a partial line sees it all the same, and
// what the agent types next lands after it, where the agent sees it.
// Before, the redraw left the held-back bytes out and the live output
// after it began past them, so the supervisor never saw the line and
// the agent's typing was drawn over its start.
func TestSupervisorSeesHeldBackOutput(t *testing.T) {
	e := newEnv(t, envOptions{recording: gateway.RecordingConfig{
		Redact: recorder.RedactConfig{Patterns: []*regexp.Regexp{regexp.MustCompile(`TOPSECRET-\w+`)}},
	}})
	e.addUser("alice", "agent", "t1")
	e.addUser("sue", "supervisor", "t1")
	s := e.newSession("alice", "shell", 30*time.Minute)
	p := e.startPTY(t, e.certFor("alice"), s.ID)
	p.expect(t, "This session is recorded")
	// A partial line, followed by the prompt on the same line.
	p.send("printf 'partial-%s ' $((6*7))\r")
	p.expect(t, "partial-42 ")

	sv := e.startPTY(t, e.certFor("sue"), s.ID)
	sv.expect(t, "(1 of 1 open)")
	p.send("echo typed-$((6*7))\r")
	p.expect(t, "typed-42\r\n")
	sv.expect(t, "typed-42\r\n")
	term := vt.New(80, 24)
	term.Write([]byte(sv.out.String()))
	var line string
	for y := range 24 {
		if l := term.Line(y); strings.Contains(l, "echo typed-") {
			line = l
		}
	}
	if !regexp.MustCompile(`partial-42 .*echo typed-\$\(\(6\*7\)\)$`).MatchString(line) {
		t.Errorf("the supervisor's line with the agent's typing: got %q, want it after partial-42 and the prompt\nscreen:\n%s", line, term.String())
	}
}

// TestSupervisorWatchNotBlindedByString: a string sequence the agent
// starts and leaves unfinished (printf '\033P') ends at the next ESC on
// a terminal, as in xterm, so it hides nothing from the supervisor
// either: the output after it, and what the agent does next, reach the
// watch. Before, vt.Filter left out everything up to an ST that never
// came, so one printf blinded the watch for the rest of the session,
// redraws included.
func TestSupervisorWatchNotBlindedByString(t *testing.T) {
	_, _, p, sv := watchedShell(t)
	p.send("printf 'x\\033P\\033[0mafter-dcs-%s\\n' $((6*7))\r")
	p.expect(t, "after-dcs-42")
	sv.expect(t, "after-dcs-42")
	p.send("echo next-$((6*7))\r")
	p.expect(t, "next-42")
	sv.expect(t, "next-42")
}
