package recorder

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// Preallocation bounds: the file is reserved ahead of the writes by as
// much as has been written so far, at least minPrealloc and at most
// maxPrealloc.
const (
	minPrealloc = 1 << 20
	maxPrealloc = 16 << 20
)

// preallocator reserves disk space ahead of a file's writes with
// fallocate(FALLOC_FL_KEEP_SIZE): the file size and its bytes do not
// change, but ext4 then skips its per-page delayed-allocation work on each
// write (reservation, extent status, buffer heads), which took about a
// third of the kernel's write time. It is only an optimization: any error
// turns it off. Space reserved past the end is released by release; after
// a crash at most maxPrealloc bytes stay reserved past the end of the file.
type preallocator struct {
	rc       syscall.RawConn // nil: off
	reserved int64           // file offset up to which space is reserved
}

func newPreallocator(dst any) *preallocator {
	sc, ok := dst.(syscall.Conn)
	if !ok {
		return &preallocator{}
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return &preallocator{}
	}
	return &preallocator{rc: rc}
}

// ensure reserves space when a write would end at file offset end past
// what is reserved.
func (p *preallocator) ensure(written, end int64) {
	if p.rc == nil || end <= p.reserved {
		return
	}
	from := max(p.reserved, written)
	n := end - from + min(max(written, minPrealloc), maxPrealloc)
	var err error
	if cerr := p.rc.Control(func(fd uintptr) {
		err = unix.Fallocate(int(fd), unix.FALLOC_FL_KEEP_SIZE, from, n)
	}); cerr != nil || err != nil {
		p.rc = nil
		return
	}
	p.reserved = from + n
}

// release frees the space reserved past the end of the file, by
// truncating it to its size.
func (p *preallocator) release() {
	if p.rc == nil {
		return
	}
	p.rc.Control(func(fd uintptr) {
		var st unix.Stat_t
		if unix.Fstat(int(fd), &st) != nil || st.Size >= p.reserved {
			return
		}
		// Truncating to the current size keeps every byte and frees the
		// blocks past the end (ext4 punches no holes past the end).
		unix.Ftruncate(int(fd), st.Size)
	})
	p.rc = nil
}
