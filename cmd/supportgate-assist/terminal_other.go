//go:build !linux && !darwin && !dragonfly && !freebsd && !netbsd && !openbsd

package main

// isTerminalFd cannot tell here, so it says no: the helper then needs
// --yes, and never asks a question nobody may be there to answer.
func isTerminalFd(fd uintptr) bool { return false }

// termCols cannot tell here.
func termCols(fd uintptr) int { return 0 }

// isForegroundFd cannot tell here.
func isForegroundFd(fd uintptr) bool { return false }
