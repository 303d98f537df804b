package wghub_test

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/netstack"
)

// upstreamPair is the baseline of wireguard-go's own netstack example: two
// devices on gVisor netstacks with the stock conn.StdNetBind (which opens
// its own sockets: acceptable in a benchmark, never in the hub), on
// loopback. It returns a dialer on side A and a sink listener on side B.
func upstreamPair(b *testing.B) (dial func() (net.Conn, error)) {
	b.Helper()
	aAddr, bAddr := netip.MustParseAddr("100.64.9.1"), netip.MustParseAddr("100.64.9.2")
	aPriv, aPub := newKey()
	bPriv, bPub := newKey()
	mk := func(addr netip.Addr, priv [32]byte) (*device.Device, *netstack.Net) {
		tdev, tnet, err := netstack.CreateNetTUN([]netip.Addr{addr}, nil, 1420)
		if err != nil {
			b.Fatal(err)
		}
		d := device.NewDevice(tdev, conn.NewStdNetBind(), device.NewLogger(device.LogLevelSilent, ""))
		b.Cleanup(d.Close)
		if err := d.IpcSet("private_key=" + hex.EncodeToString(priv[:]) + "\nlisten_port=0\n"); err != nil {
			b.Fatal(err)
		}
		if err := d.Up(); err != nil {
			b.Fatal(err)
		}
		return d, tnet
	}
	da, na := mk(aAddr, aPriv)
	db, nb := mk(bAddr, bPriv)
	port := func(d *device.Device) int {
		s, _ := d.IpcGet()
		var p int
		for _, line := range splitLines(s) {
			if _, err := fmt.Sscanf(line, "listen_port=%d", &p); err == nil {
				return p
			}
		}
		b.Fatal("no listen port")
		return 0
	}
	if err := da.IpcSet(fmt.Sprintf("public_key=%s\nendpoint=127.0.0.1:%d\nallowed_ip=%s/32\n", hex.EncodeToString(bPub[:]), port(db), bAddr)); err != nil {
		b.Fatal(err)
	}
	if err := db.IpcSet(fmt.Sprintf("public_key=%s\nendpoint=127.0.0.1:%d\nallowed_ip=%s/32\n", hex.EncodeToString(aPub[:]), port(da), aAddr)); err != nil {
		b.Fatal(err)
	}
	ln, err := nb.ListenTCPAddrPort(netip.AddrPortFrom(bAddr, 9))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	sink(b, ln)
	return func() (net.Conn, error) { return na.DialTCPAddrPort(netip.AddrPortFrom(bAddr, 9)) }
}

func splitLines(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		out = append(out, s[:i])
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
	return out
}
