//go:build !unix

package main

import "io"

// keepRunning does nothing where there is no job control.
func keepRunning(io.Writer) (stop func()) { return func() {} }
