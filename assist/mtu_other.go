//go:build !linux

package assist

import "net"

// routeMTU is not known on this system: tunnelMTU uses DefaultMTU.
func routeMTU(*net.UDPConn, bool) (int, bool) { return 0, false }
