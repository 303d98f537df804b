package assist

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// growPipe asks for a pipe buffer of size bytes when r is a pipe
// (os/exec's, which keeps *os.File's methods); it is best effort.
func growPipe(r any, size int) {
	sc, ok := r.(interface {
		SyscallConn() (syscall.RawConn, error)
	})
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		unix.FcntlInt(fd, unix.F_SETPIPE_SZ, size)
	})
}
