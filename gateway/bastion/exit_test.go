package bastion

import (
	"testing"

	"golang.org/x/crypto/ssh"
)

// TestLastExit: of a helper's many exit requests only the last is kept.
// (Unit level: the real helper exits once, and a misbehaving one would
// need a fake SSH server behind the hub.)
func TestLastExit(t *testing.T) {
	const n = 10000
	reqs := make(chan *ssh.Request, n+2)
	for i := range n {
		reqs <- &ssh.Request{Type: "exit-status", Payload: ssh.Marshal(struct{ C uint32 }{uint32(i)})}
	}
	reqs <- &ssh.Request{Type: "exit-signal", Payload: ssh.Marshal(struct {
		Signal string
		Core   bool
		Msg    string
		Lang   string
	}{"KILL", false, "", ""})}
	reqs <- &ssh.Request{Type: "keepalive@openssh.com"}
	close(reqs)
	got := lastExit(reqs)
	if got == nil || got.Type != "exit-signal" {
		t.Fatalf("got %+v, want the last exit, the exit-signal", got)
	}
	if lastExit(closedReqs()) != nil {
		t.Errorf("no exit: got one")
	}
}

func closedReqs() chan *ssh.Request {
	c := make(chan *ssh.Request)
	close(c)
	return c
}
