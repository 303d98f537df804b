package wghub_test

import (
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"supportgate/assist"
	"supportgate/gateway/wghub"
	"supportgate/session"
)

// acceptEach accepts connections on ln until it closes and hands each to
// handle on a goroutine of its own, closing it afterwards.
func acceptEach(ln net.Listener, handle func(net.Conn)) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
}

// sink accepts TCP connections, reads each to EOF and answers one byte.
func sink(_ testing.TB, ln net.Listener) {
	acceptEach(ln, func(c net.Conn) {
		io.Copy(io.Discard, c)
		c.Write([]byte{1})
	})
}

// push writes total bytes on c, half-closes and waits for the sink's
// answer, and returns MB/s.
func push(b *testing.B, c net.Conn, total int) float64 {
	b.Helper()
	defer c.Close()
	buf := make([]byte, 64<<10)
	start := time.Now()
	for n := 0; n < total; n += len(buf) {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		b.Fatal(err)
	}
	return float64(total) / 1e6 / time.Since(start).Seconds()
}

// hubAndHelper is the hub with one enrolled helper (package assist on its
// own netstack) whose tunnel port 9 forwards to target, all on loopback.
func hubAndHelper(b testing.TB, target string) *wghub.Hub {
	return hubAndHelperOn(b, nil, "", "udp4", target, 0)
}

// hubAndHelperOn is hubAndHelper with the hub on hubConn (nil: a new IPv4
// loopback socket), told to advertise endpoint ("": its own address), and
// the helper on a socket of helperNet with tunnel MTU helperMTU (0: its
// default, derived from the path).
func hubAndHelperOn(b testing.TB, hubConn *net.UDPConn, endpoint, helperNet, target string, helperMTU int) *wghub.Hub {
	b.Helper()
	fs := newFakeSessions()
	h := newHubEndpoint(b, fs, hubConn, endpoint)
	fs.add("s1", "alice", "shell,tunnel:9")
	priv, pub := newKey()
	host := newHostKey(b)
	en, err := h.Enroll("s1", pub, host.PublicKey())
	if err != nil {
		b.Fatal(err)
	}
	gk := h.PublicKey()
	uc, err := net.ListenUDP(helperNet, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { uc.Close() })
	ep, err := assist.StartEndpoint(assist.EndpointConfig{
		Enrollment: &assist.Enrollment{
			GatewayKey: base64.StdEncoding.EncodeToString(gk[:]), Endpoint: en.Endpoint,
			Address: en.Address.String() + "/32", GatewayAddress: en.GatewayAddress.String(), SSHPort: en.SSHPort,
			GatewaySSHKey: string(ssh.MarshalAuthorizedKey(newHostKey(b).PublicKey())), Scopes: []string{"shell", "tunnel:9"},
		},
		PrivateKey: priv, HostKey: host, Conn: uc, MTU: helperMTU,
		DialLocal: func(ctx context.Context, _ uint16) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", target)
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ep.Close() })
	return h
}

// BenchmarkThroughput sends the same bytes over one TCP stream several
// ways and reports each rate and its ratio to plain loopback TCP measured
// in the same run: through the hub and a package assist helper (netstack
// on both ends; the helper at its default MTU, which on loopback is the
// largest, and at 1420), wireguard-go's own netstack pair (MTU 1420), and
// through the hub to Debian's wireguard-go on a TUN device (MTU 1420; when
// the machine allows, otherwise that part is skipped).
func BenchmarkThroughput(b *testing.B) {
	total := b.N * (32 << 20)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	sink(b, ln)

	dial := func(h *wghub.Hub) net.Conn {
		c, err := h.Dial(context.Background(), "s1", session.Need{Agent: "alice", Kind: session.Tunnel, Port: 9})
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	h := hubAndHelper(b, ln.Addr().String())
	push(b, dial(h), 4<<20) // warm up: handshake, windows

	b.ResetTimer()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	loop := push(b, c, total)
	assistRate := push(b, dial(h), total)
	b.StopTimer()
	b.ReportMetric(loop, "loopback-MB/s")
	b.ReportMetric(assistRate, "hub+assist-MB/s")
	b.ReportMetric(assistRate/loop, "hub+assist/loopback")

	// The same with the helper at MTU 1420, as a helper across a usual
	// 1500-byte path would be (and as the upstream pair below is).
	h1420 := hubAndHelperOn(b, nil, "", "udp4", ln.Addr().String(), 1420)
	push(b, dial(h1420), 4<<20)
	b.StartTimer()
	assist1420 := push(b, dial(h1420), total)
	b.StopTimer()
	b.ReportMetric(assist1420, "hub+assist-1420-MB/s")

	// Upstream: wireguard-go's netstack with its stock bind, netstack to
	// netstack (one hop fewer than hub+assist, which forwards to a
	// loopback sink).
	up := upstreamPair(b)
	c, err = up()
	if err != nil {
		b.Fatal(err)
	}
	push(b, c, 4<<20)
	c, err = up()
	if err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	upRate := push(b, c, total)
	b.StopTimer()
	b.ReportMetric(upRate, "upstream-netstack-MB/s")
	b.ReportMetric(assistRate/upRate, "hub+assist/upstream-netstack")
	b.ReportMetric(assist1420/upRate, "hub+assist-1420/upstream-netstack")

	if !canRealPeer() {
		b.Log("wireguard-go part skipped: needs root, /dev/net/tun, wireguard-go, wg and ip")
		return
	}
	p := startRealPeer(b, true)
	push(b, dial(p.hub), 4<<20)
	b.StartTimer()
	real := push(b, dial(p.hub), total)
	b.StopTimer()
	b.ReportMetric(real, "hub+wggo-tun-MB/s")
	b.ReportMetric(real/loop, "hub+wggo-tun/loopback")
	b.ReportMetric(assistRate/real, "hub+assist/hub+wggo-tun")
}

// BenchmarkIdlePeerMemory enrolls peers that never handshake and reports
// the heap each one costs the hub (and its WireGuard device).
func BenchmarkIdlePeerMemory(b *testing.B) {
	const peers = 2000
	fs := newFakeSessions()
	h := newHub(b, fs, netip.Prefix{}, nil)
	hk := newHostKey(b).PublicKey()
	ids := make([]string, peers)
	keys := make([][32]byte, peers)
	for i := range ids {
		ids[i] = "s" + string(rune('A'+i%26)) + itoa(i)
		fs.add(ids[i], "a", "shell")
		_, keys[i] = newKey()
	}
	var per float64
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i, id := range ids {
			if _, err := h.Enroll(id, keys[i], hk); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		per = float64(after.HeapAlloc-before.HeapAlloc) / peers
		b.StopTimer()
		for _, id := range ids {
			fs.m[id].cancel()
		}
		for h.Peers() > 0 {
			time.Sleep(time.Millisecond)
		}
		for _, id := range ids {
			fs.add(id, "a", "shell")
		}
		b.StartTimer()
	}
	b.ReportMetric(per, "B/peer")
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var d []byte
	for ; i > 0; i /= 10 {
		d = append([]byte{byte('0' + i%10)}, d...)
	}
	return string(d)
}

// cpuTime is the process's user plus system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// source accepts TCP connections and writes n bytes on each, then closes.
func source(ln net.Listener, n int) {
	acceptEach(ln, func(c net.Conn) {
		buf := make([]byte, 64<<10)
		for sent := 0; sent < n; sent += len(buf) {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
}

// pull reads c to EOF and returns the bytes read.
func pull(b *testing.B, c net.Conn) int {
	b.Helper()
	defer c.Close()
	n, err := io.Copy(io.Discard, c)
	if err != nil {
		b.Fatal(err)
	}
	return int(n)
}

// BenchmarkTunnel moves SG_BENCH_MB megabytes (default 128) over one TCP
// stream through the hub and a helper (both in this process), in each
// direction: push (gateway to helper, as BenchmarkThroughput) and pull
// (helper to gateway, the direction of a shell's output), each beside
// plain loopback TCP in the same run. Besides MB/s it reports the
// process's CPU time per MB, which a busy machine disturbs far less than
// wall time.
func BenchmarkTunnel(b *testing.B) {
	mb := 128
	if v, err := strconv.Atoi(os.Getenv("SG_BENCH_MB")); err == nil && v > 0 {
		mb = v
	}
	total := mb << 20
	for _, dir := range []string{"push", "pull"} {
		b.Run(dir, func(b *testing.B) {
			ln, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			if dir == "push" {
				sink(b, ln)
			} else {
				source(ln, total)
			}
			h := hubAndHelper(b, ln.Addr().String())
			dial := func() net.Conn {
				c, err := h.Dial(context.Background(), "s1", session.Need{Agent: "alice", Kind: session.Tunnel, Port: 9})
				if err != nil {
					b.Fatal(err)
				}
				return c
			}
			move := func(c net.Conn) (time.Duration, time.Duration) {
				t0, c0 := time.Now(), cpuTime()
				if dir == "push" {
					push(b, c, total)
				} else if got := pull(b, c); got != total {
					b.Fatalf("got %d bytes, want %d", got, total)
				}
				return time.Since(t0), cpuTime() - c0
			}
			loopDial := func() net.Conn {
				c, err := net.Dial("tcp4", ln.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				return c
			}
			move(dial()) // warm up
			b.ResetTimer()
			var tw, tc, lw, lc time.Duration
			for range b.N {
				w, c := move(loopDial())
				lw, lc = lw+w, lc+c
				w, c = move(dial())
				tw, tc = tw+w, tc+c
			}
			b.StopTimer()
			n := float64(b.N * mb)
			b.ReportMetric(n*(1<<20)/1e6/tw.Seconds(), "tunnel-MB/s")
			b.ReportMetric(n*(1<<20)/1e6/lw.Seconds(), "loopback-MB/s")
			b.ReportMetric(float64(tc.Milliseconds())/n, "tunnel-cpu-ms/MiB")
			b.ReportMetric(float64(lc.Milliseconds())/n, "loopback-cpu-ms/MiB")
			b.ReportMetric(0, "ns/op")
		})
	}
}
