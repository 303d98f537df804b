package assist

import (
	"net"

	"golang.org/x/sys/unix"
)

// routeMTU is the kernel's MTU for the path of the connected socket c
// (IP_MTU, IPV6_MTU): the route's, or a smaller one path MTU discovery
// learned.
func routeMTU(c *net.UDPConn, v4 bool) (int, bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	var mtu int
	var serr error
	err = rc.Control(func(fd uintptr) {
		if v4 {
			mtu, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU)
		} else {
			mtu, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MTU)
		}
	})
	return mtu, err == nil && serr == nil && mtu > 0
}
