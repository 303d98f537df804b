package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxPromptLine bounds what a prompt reads: a password or a code.
const maxPromptLine = 4096

// terminal returns r as a terminal to prompt on, or nil if it is none.
func terminal(r io.Reader) *os.File {
	f, ok := r.(*os.File)
	if !ok {
		return nil
	}
	if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err != nil {
		return nil
	}
	return f
}

// promptLine writes prompt to out and reads one line typed on the
// terminal tty. Unless echo, what is typed is not shown: echo is off
// while the line is read and comes back when it is, or when the command
// is interrupted (Ctrl-C), which ends it with status 130.
func promptLine(tty *os.File, out io.Writer, prompt string, echo bool) (string, error) {
	fd := int(tty.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return "", fmt.Errorf("prompting: %w", err)
	}
	if !echo {
		quiet := *old
		quiet.Lflag &^= unix.ECHO
		quiet.Lflag |= unix.ICANON | unix.ISIG
		if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
			return "", fmt.Errorf("turning echo off: %w", err)
		}
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
		done := make(chan struct{})
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			select {
			case <-sigs:
				unix.IoctlSetTermios(fd, unix.TCSETS, old)
				io.WriteString(out, "\n")
				os.Exit(130)
			case <-done:
			}
		}()
		defer func() {
			signal.Stop(sigs)
			close(done)
			<-stopped
			unix.IoctlSetTermios(fd, unix.TCSETS, old)
			io.WriteString(out, "\n") // the Enter typed was not shown
		}()
	}
	// Echo is off before the prompt shows, so nothing typed at it is.
	io.WriteString(out, prompt)
	return readLine(tty)
}

// readLine reads up to a newline, one read at a time, so that nothing
// after the line is taken from the terminal.
func readLine(r io.Reader) (string, error) {
	var line []byte
	buf := make([]byte, 256)
	for {
		n, err := r.Read(buf)
		line = append(line, buf[:n]...)
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			return string(bytes.TrimRight(line[:i], "\r")), nil
		}
		if len(line) > maxPromptLine {
			return "", fmt.Errorf("line longer than %d bytes", maxPromptLine)
		}
		if errors.Is(err, io.EOF) || (err == nil && n == 0) {
			if len(line) == 0 {
				return "", errors.New("no input: the terminal was closed")
			}
			return string(bytes.TrimRight(line, "\r")), nil
		}
		if err != nil {
			return "", fmt.Errorf("reading the terminal: %w", err)
		}
	}
}
