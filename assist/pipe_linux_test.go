package assist

import (
	"bytes"
	"os"
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"
)

func TestBulkWriter(t *testing.T) {
	// growPipe reaches the pipe through the wrapper os/exec hands to
	// ReadFrom, which keeps *os.File's methods.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	growPipe(struct{ *os.File }{pr}, pipeSize)
	if got, err := unix.FcntlInt(pr.Fd(), unix.F_GETPIPE_SZ, 0); err != nil || got < pipeSize {
		t.Errorf("pipe size after growPipe: got %d (%v), want %d", got, err, pipeSize)
	}

	var out bytes.Buffer
	cmd := exec.Command("head", "-c", "3000000", "/dev/zero")
	cmd.Stdout = bulkWriter{&out}
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 3000000 {
		t.Fatalf("got %d bytes of output, want 3000000", out.Len())
	}
}
