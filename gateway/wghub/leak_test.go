package wghub_test

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"supportgate/gateway/wghub"
	"supportgate/session"
)

// TestCloseLeavesNoGoroutines: a hub with a live peer, a helper and a dialed
// connection, once closed, leaves nothing running.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		sink(t, ln)
		fs := newFakeSessions()
		uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer uc.Close()
		priv, _ := newKey()
		h, err := wghub.New(wghub.Config{PrivateKey: priv, Conn: uc, Endpoint: uc.LocalAddr().String(), Sessions: fs, Prefix: netip.Prefix{}})
		if err != nil {
			t.Fatal(err)
		}
		fs.add("s1", "alice", "shell")
		_, pub := newKey()
		if _, err := h.Enroll("s1", pub, newHostKey(t).PublicKey()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		h.Dial(ctx, "s1", session.Need{Agent: "alice", Kind: session.Shell}) // nobody answers: times out
		h.Close()
		h.Close() // idempotent
	}()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:n])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
