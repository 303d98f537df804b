package recorder

import (
	"os"

	"golang.org/x/sys/unix"
)

// writebackChunk is how much a recording writes before it asks the kernel
// to start writing it to the disk.
const writebackChunk = 8 << 20

// writeback keeps a long recording from filling the page cache with dirty
// pages. Without it a recording of a few gigabytes (a bulk transfer, hours
// of video) runs into the kernel's dirty-page throttling, where each
// write(2) costs four to six times as much CPU; with it, every 8 MiB
// written is sent to the disk at once (without waiting for it) and the
// chunk before, written by then, is dropped from the cache. The data
// reaches the disk sooner, too. Errors are ignored: these are hints.
type writeback struct {
	fd      int
	start   int64 // offset of the first byte not yet sent to the disk
	written int64 // bytes written so far
}

func newWriteback(dst any, offset int64) *writeback {
	f, ok := dst.(*os.File)
	if !ok {
		return nil
	}
	return &writeback{fd: int(f.Fd()), start: offset, written: offset}
}

// wrote notes n more bytes written at the end of the file.
func (w *writeback) wrote(n int) {
	if w == nil {
		return
	}
	w.written += int64(n)
	for w.written-w.start >= writebackChunk {
		_ = unix.SyncFileRange(w.fd, w.start, writebackChunk, unix.SYNC_FILE_RANGE_WRITE)
		if w.start >= writebackChunk {
			_ = unix.Fadvise(w.fd, w.start-writebackChunk, writebackChunk, unix.FADV_DONTNEED)
		}
		w.start += writebackChunk
	}
}
