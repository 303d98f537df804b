//go:build unix

package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// keepRunning keeps Ctrl-Z from stopping the helper, until the returned
// func is called. A stopped helper can neither revoke the session nor end
// what its shells started, and those run on in sessions of their own:
// Ctrl-Z would freeze the only thing that can stop the agent, past the
// time box. Ctrl-Z (SIGTSTP) is answered on out with how to end the
// session. SIGTTIN and SIGTTOU are left alone: ignored, they would be
// inherited by the customer's shells and break their job control. The
// helper cannot be put in the background once running (that takes a
// stop), and it reads its terminal during a session only while in the
// foreground (see foreground).
//
// SIGPIPE is caught and dropped, so that a write to a stdout whose reader
// went away fails (see watchedOutput) instead of killing the helper with
// the session open. It is caught, not ignored: an ignored signal would be
// inherited by the customer's shells, where `yes | head` would then print
// errors.
func keepRunning(out io.Writer) (stop func()) {
	pipe := make(chan os.Signal, 1)
	signal.Notify(pipe, syscall.SIGPIPE)
	tstp := make(chan os.Signal, 1)
	signal.Notify(tstp, syscall.SIGTSTP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-tstp:
				fmt.Fprint(out, "\r\033[KCtrl-Z does not pause a support session: press Ctrl-C to end it.\n")
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(tstp)
		close(done)
	}
}
