package recorder

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteback: the hints advance by whole chunks from the starting
// offset and leave the file's contents as written.
func TestWriteback(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "wb"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := bytes.Repeat([]byte{'h'}, 100)
	f.Write(head)
	wb := newWriteback(f, int64(len(head)))
	if wb == nil {
		t.Fatal("no writeback for an *os.File")
	}
	chunk := make([]byte, 300<<10)
	var want bytes.Buffer
	want.Write(head)
	for i := 0; want.Len() < 2*writebackChunk+len(head)+len(chunk); i++ {
		for j := range chunk {
			chunk[j] = byte(i + j)
		}
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
		wb.wrote(len(chunk))
		want.Write(chunk)
	}
	if got := wb.start; got != int64(len(head))+2*writebackChunk {
		t.Errorf("hinted up to %d, want %d", got, len(head)+2*writebackChunk)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil || !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("file differs from what was written (%d bytes, want %d): %v", len(got), want.Len(), err)
	}
	if newWriteback(&bytes.Buffer{}, 0) != nil {
		t.Error("writeback for something that is not a file")
	}
}
