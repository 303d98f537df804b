package main

import (
	"io"
	"os"
)

// isTerminal reports whether r is a terminal, where a person can be asked:
// a file whose descriptor is a terminal device. Pipes, regular files,
// /dev/null and readers that are not files are not. It does not call Fd,
// which would take the file out of the runtime poller.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok || f == nil {
		return false
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	is := false
	if rc.Control(func(fd uintptr) { is = isTerminalFd(fd) }) != nil {
		return false
	}
	return is
}
