package recorder_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"supportgate/recorder"
	"supportgate/recorder/recordertest"
)

// TestPreallocReleased checks that the space the writer reserves ahead of
// its writes is reserved while it writes and released by Close: the file
// then takes no more blocks than its size needs.
func TestPreallocReleased(t *testing.T) {
	k := recordertest.NewKeys(t)
	path := filepath.Join(t.TempDir(), "rec.sgrec")
	w, err := recorder.Create(path, recordertest.Config(k, recordertest.NewClock(t0)))
	if err != nil {
		t.Fatal(err)
	}
	line := []byte(strings.Repeat("x", 1000) + "\r\n")
	for range 3000 {
		if err := w.Output(line); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	during := st.Blocks * 512
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	t.Logf("size %d, allocated %d while writing, %d after Close", st.Size, during, st.Blocks*512)
	if during <= st.Size {
		t.Logf("no space reserved ahead while writing (file system without fallocate?)")
	}
	if got, limit := st.Blocks*512, st.Size+64<<10; got > limit {
		t.Errorf("after Close: got %d bytes allocated for a %d-byte file, want at most %d", got, st.Size, limit)
	}
	if _, err := recorder.VerifyFile(path); err != nil {
		t.Errorf("verify: %v", err)
	}
	os.Remove(path)
}
