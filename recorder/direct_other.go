//go:build !linux

package recorder

import "os"

// createFile creates a new recording file at path.
func createFile(path string) (recordingFile, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
}
