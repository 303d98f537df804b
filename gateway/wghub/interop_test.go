package wghub_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"supportgate/gateway/wghub"
	"supportgate/internal/realpeer"
	"supportgate/session"
)

// realPeer is Debian's wireguard-go with a TUN device, configured by wg(8),
// in a network namespace of its own. The hub's UDP socket and a TCP
// listener behind the TUN device are opened inside that namespace too, so
// no packet of the test ever leaves it: no veth, no route in the host's
// namespace.
type realPeer struct {
	ns       string
	hub      *wghub.Hub
	sessions *fakeSessions
	sess     *fakeSession
	addr     netip.Addr // the peer's tunnel address
	tcpPort  uint16     // a TCP echo/sink listener on addr, behind the TUN device
	sink     bool
}

// needRealPeer finds what the test needs or says why not: skipped on a
// developer machine, failed under CI=true.
func needRealPeer(t testing.TB) {
	t.Helper()
	realpeer.Require(t, "wireguard-go")
	realpeer.Require(t, "wg")
	realpeer.Require(t, "ip")
	why := ""
	switch {
	case runtime.GOOS != "linux":
		why = "network namespaces need Linux"
	case os.Geteuid() != 0:
		why = "creating a network namespace and a TUN device needs root"
	default:
		if f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0); err != nil {
			why = fmt.Sprintf("no TUN device: %v", err)
		} else {
			f.Close()
		}
	}
	if why != "" {
		if realpeer.InCI() {
			t.Fatal("WireGuard interop: " + why)
		}
		t.Skip("WireGuard interop: " + why)
	}
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// inNS runs f on a thread that has entered namespace ns; sockets opened in
// f stay in ns.
func inNS(t testing.TB, ns string, f func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is not unlocked on a failed return: it then dies
		// with the goroutine instead of serving others in the wrong namespace.
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			done <- err
			return
		}
		defer orig.Close()
		target, err := os.Open(filepath.Join("/var/run/netns", ns))
		if err != nil {
			done <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("setns: %w", err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("setns back: %w", err)
			return
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// canRealPeer reports whether startRealPeer can run here, for benchmarks
// that measure the real peer only when it can.
func canRealPeer() bool {
	for _, p := range []string{"wireguard-go", "wg", "ip"} {
		if _, err := exec.LookPath(p); err != nil {
			return false
		}
	}
	f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	return os.Geteuid() == 0
}

func startRealPeer(t testing.TB, sink bool) *realPeer {
	t.Helper()
	needRealPeer(t)
	rnd := make([]byte, 4)
	if _, err := io.ReadFull(randReader, rnd); err != nil {
		t.Fatal(err)
	}
	p := &realPeer{ns: "sgwg-" + hex.EncodeToString(rnd), sessions: newFakeSessions(), sink: sink}
	if out, err := exec.Command("ip", "netns", "add", p.ns).CombinedOutput(); err != nil {
		msg := fmt.Sprintf("WireGuard interop: cannot create a network namespace: %v: %s", err, out)
		if realpeer.InCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", p.ns).Run() })
	run(t, "ip", "-n", p.ns, "link", "set", "lo", "up")

	var uc *net.UDPConn
	inNS(t, p.ns, func() (err error) {
		uc, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		return err
	})
	t.Cleanup(func() { uc.Close() })
	p.hub = newHub(t, p.sessions, netip.Prefix{}, uc)
	p.sess = p.sessions.add("s1", "alice", "shell,tunnel:7,9")

	priv, pub := newKey()
	en, err := p.hub.Enroll("s1", pub, newHostKey(t).PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	p.addr = en.Address

	// wireguard-go in the foreground, owned by the test.
	const dev = "sgwg0"
	cmd := exec.Command("ip", "netns", "exec", p.ns, "wireguard-go", "-f", dev)
	cmd.Env = append(os.Environ(), "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1", "LOG_LEVEL=error")
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); exec.Command("ip", "-n", p.ns, "link", "show", dev).Run() != nil; {
		if time.Now().After(deadline) {
			msg := "WireGuard interop: wireguard-go made no TUN device: " + stderr.String()
			if realpeer.InCI() {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
	keyFile := filepath.Join(t.TempDir(), "peer.key")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(priv[:])+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hubPub := p.hub.PublicKey()
	run(t, "ip", "netns", "exec", p.ns, "wg", "set", dev, "private-key", keyFile,
		"peer", base64.StdEncoding.EncodeToString(hubPub[:]), "endpoint", uc.LocalAddr().String(),
		"allowed-ips", p.hub.Address().String()+"/32", "persistent-keepalive", "1")
	run(t, "ip", "-n", p.ns, "addr", "add", p.addr.String()+"/32", "dev", dev)
	run(t, "ip", "-n", p.ns, "link", "set", dev, "up")
	run(t, "ip", "-n", p.ns, "route", "add", p.hub.Address().String()+"/32", "dev", dev)

	var ln net.Listener
	inNS(t, p.ns, func() (err error) {
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(p.addr, 9).String())
		return err
	})
	t.Cleanup(func() { ln.Close() })
	p.tcpPort = 9
	acceptEach(ln, func(c net.Conn) {
		if sink {
			io.Copy(io.Discard, c)
			c.Write([]byte{1})
			return
		}
		io.Copy(c, c)
	})
	return p
}

func TestInteropWireguardGo(t *testing.T) {
	p := startRealPeer(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := p.hub.Dial(ctx, "s1", session.Need{Agent: "alice", Kind: session.Tunnel, Port: p.tcpPort})
	if err != nil {
		t.Fatalf("dial through wireguard-go: %v", err)
	}
	defer c.Close()
	fmt.Fprintln(c, "hello over standard WireGuard")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "hello over standard WireGuard\n" {
		t.Fatalf("echo through wireguard-go: got %q, %v", line, err)
	}
	if _, err := p.hub.Dial(ctx, "s1", session.Need{Agent: "alice", Kind: session.Tunnel, Port: 8}); !errors.Is(err, session.ErrScopeNotAllowed) {
		t.Errorf("unconsented port: got %v, want ErrScopeNotAllowed", err)
	}
	// The session ends: the connection closes and the peer is gone at once.
	start := time.Now()
	p.sess.cancel()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || time.Since(start) > time.Second {
		t.Errorf("read after the end: %v after %v, want closed within 1s", err, time.Since(start))
	}
	for p.hub.Enrolled("s1") || p.hub.DevicePeerCount() != 0 {
		if time.Since(start) > time.Second {
			t.Fatal("peer not removed within 1s")
		}
		time.Sleep(time.Millisecond)
	}
}
