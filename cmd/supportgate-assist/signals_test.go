package main

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// TestSecondHangupCaught: once the first hang-up has started the helper's
// way out, a second one (a closing window sends two) stays caught instead
// of killing the helper, here the test binary, mid-revoke.
func TestSecondHangupCaught(t *testing.T) {
	stopped := make(chan struct{})
	stopOnSignal(func() { close(stopped) })
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("the first hang-up did not stop the helper")
	}
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	time.Sleep(200 * time.Millisecond) // a default action would have ended the process by now
}
