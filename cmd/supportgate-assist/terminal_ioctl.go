//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package main

import "golang.org/x/sys/unix"

func termCols(fd uintptr) int {
	ws, err := unix.IoctlGetWinsize(int(fd), unix.TIOCGWINSZ)
	if err != nil {
		return 0
	}
	return int(ws.Col)
}

// isForegroundFd: ENOTTY means a terminal that is not this process's
// controlling terminal, which cannot stop it for reading.
func isForegroundFd(fd uintptr) bool {
	pgrp, err := unix.IoctlGetInt(int(fd), unix.TIOCGPGRP)
	if err == unix.ENOTTY {
		return true
	}
	return err == nil && pgrp == unix.Getpgrp()
}
