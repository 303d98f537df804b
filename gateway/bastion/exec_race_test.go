package bastion_test

import (
	"testing"
	"time"
)

// TestExecExitsAtOnce: a command that exits at once still gets its exec
// request answered before its channel closes, so that a client sees the
// command's exit status rather than EOF from starting it. The helper's
// command can end, and its channel close, before the helper's reply to
// exec has been relayed to the agent; the bastion must answer first.
func TestExecExitsAtOnce(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.addUser("alice", "agent", "t1")
	s := e.newSession("alice", "shell", 30*time.Minute)
	id := e.certFor("alice")
	c, err := dialBastion(e, id, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cmds, want := []string{"true", "echo ok", "exit 0"}, []string{"", "ok\n", ""}
	for i := range 200 {
		sess, err := c.NewSession()
		if err != nil {
			t.Fatalf("run %d: new session: %v", i, err)
		}
		out, err := sess.Output(cmds[i%len(cmds)])
		sess.Close()
		if err != nil || string(out) != want[i%len(cmds)] {
			t.Fatalf("run %d (%s): %q, %v; want %q and exit 0", i, cmds[i%len(cmds)], out, err, want[i%len(cmds)])
		}
	}
}
