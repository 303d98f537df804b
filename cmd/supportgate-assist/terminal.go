package main

import (
	"io"
	"os"
)

// isTerminal reports whether r is a terminal, where a person can be asked:
// a file whose descriptor is a terminal device. Pipes, regular files,
// /dev/null and readers that are not files are not.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && f != nil && isTerminalFd(f.Fd())
}
