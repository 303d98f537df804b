package main

import (
	"io"
	"os"
	"unicode/utf8"
)

// isTerminal reports whether r is a terminal, where a person can be asked:
// a file whose descriptor is a terminal device. Pipes, regular files,
// /dev/null and readers that are not files are not. It does not call Fd,
// which would take the file out of the runtime poller.
func isTerminal(r io.Reader) bool {
	is := false
	withFd(r, func(fd uintptr) { is = isTerminalFd(fd) })
	return is
}

// withFd calls f with x's file descriptor if x is an *os.File, without
// Fd (which would take the file out of the runtime poller), and reports
// whether it did.
func withFd(x any, f func(fd uintptr)) bool {
	file, ok := x.(*os.File)
	if !ok || file == nil {
		return false
	}
	rc, err := file.SyscallConn()
	if err != nil {
		return false
	}
	return rc.Control(f) == nil
}

// termWidth returns the width in columns of the terminal w writes to, or 0
// if w is not a terminal or the width is unknown.
func termWidth(w io.Writer) int {
	if o, ok := w.(*watchedOutput); ok {
		w = o.w
	}
	cols := 0
	withFd(w, func(fd uintptr) { cols = termCols(fd) })
	return cols
}

// fitLine cuts line to fit in width columns, leaving the last one free (a
// line that fills it wraps on many terminals, and the status line, redrawn
// with a carriage return each second, would then leave a copy behind per
// redraw). It counts a rune as a column: the line is printable text
// (assist.Printable). A width of 0 means unknown: no cut.
func fitLine(line string, width int) string {
	if width <= 1 || utf8.RuneCountInString(line) < width {
		return line
	}
	keep := width - 2 // and the ellipsis
	for i := range line {
		if keep == 0 {
			return line[:i] + "…"
		}
		keep--
	}
	return line
}

// foreground reports whether r is a terminal whose foreground process
// group is this process's: reading it then does not stop the helper
// (SIGTTIN). A helper started in the background (with &) must not read it
// during a session.
func foreground(r io.Reader) bool {
	fg := false
	withFd(r, func(fd uintptr) { fg = isForegroundFd(fd) })
	return fg
}
