package recorder_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"supportgate/recorder"
	"supportgate/recorder/recordertest"
)

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	f()
	runtime.ReadMemStats(&m1)
	return m1.TotalAlloc - m0.TotalAlloc
}

// TestForgedFooterOffset checks that a footer pointing far before the end
// of the file (the footer is not signed) costs at most one frame of memory,
// not the distance to the end, on every call that loads the index.
func TestForgedFooterOffset(t *testing.T) {
	k := recordertest.NewKeys(t)
	c := recordertest.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	var buf bytes.Buffer
	w, err := recorder.NewWriter(&buf, recordertest.Config(k, c))
	if err != nil {
		t.Fatal(err)
	}
	w.Output([]byte("hi"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	hdrLen, _ := parseFile(t, buf.Bytes())

	// A signed header, zeros (sparse), and a footer naming the first byte
	// after the header.
	const size = 64 << 20
	path := filepath.Join(t.TempDir(), "forged.sgrec")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(buf.Bytes()[:hdrLen]); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	var foot [16]byte
	copy(foot[:], "SGRECEND")
	binary.BigEndian.PutUint64(foot[8:], uint64(hdrLen))
	if _, err := f.WriteAt(foot[:], size-16); err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	const limit = 1 << 20 // far below the file; a frame header and buffers
	var ended bool
	if n := allocated(func() { ended, err = recorder.Ended(f, size) }); n > limit {
		t.Errorf("Ended allocated %d bytes for a %d-byte file, want at most %d", n, size, limit)
	}
	if ended || err != nil {
		t.Errorf("Ended = %v, %v; want false, nil", ended, err)
	}

	r, err := recorder.OpenFile(path, k.Identity)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"Duration", func() error { _, err := r.Duration(); return err }},
		{"Index", func() error { _, err := r.Index(); return err }},
		{"Seek", func() error { _, err := r.Seek(time.Second); return err }},
	} {
		var err error
		if n := allocated(func() { err = tc.call() }); n > limit {
			t.Errorf("%s allocated %d bytes for a %d-byte file, want at most %d", tc.name, n, size, limit)
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if _, err := r.Next(); err == nil {
		t.Error("Next on zeros: got no error")
	}
}
