package rtc_test

import (
	"bytes"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"supportgate/gateway/rtc"
	"supportgate/gateway/rtc/rtctest"
	"supportgate/internal/realpeer"
)

// TestRelayThroughTURN shares a screen from a publisher that may reach the
// relay only through a TURN server (ICE transport policy "relay", as for
// a customer whose network lets neither UDP nor TCP through to the
// gateway): coturn, run as the README says, with a static user. The relay
// hands the TURN server to the page in its hello; the publisher's only
// candidates are relayed ones, its connection goes through coturn, and
// the viewer gets the frames. Over UDP and over TCP (for networks that
// let only TCP out).
func TestRelayThroughTURN(t *testing.T) {
	turnAddr, user, pass := startCoturn(t)
	for i, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			turnThrough(t, turnAddr, transport, user, pass, uint16(43000+i*100))
		})
	}
}

// turnThrough is TestRelayThroughTURN with the TURN server at addr,
// reached over transport, and the relay on the 100 UDP ports from
// portMin.
func turnThrough(t *testing.T, addr, transport, user, pass string, portMin uint16) {
	turnURL := "turn:" + addr + "?transport=" + transport
	servers := []webrtc.ICEServer{{URLs: []string{turnURL}, Username: user, Credential: pass}}
	_, _, serve, _ := testRoomConfig(t, rtc.Config{Loopback: true, UDPPortMin: portMin, UDPPortMax: portMin + 99, ICEServers: servers}, &fakeRec{})

	conn := serve(rtc.Publisher, "customer")
	hello, err := rtctest.Message(conn, "hello", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(hello.ICEServers) != 1 || hello.ICEServers[0].URLs[0] != turnURL || hello.ICEServers[0].Username != user {
		t.Fatalf("hello's ICE servers: %+v, want %s as %s", hello.ICEServers, turnURL, user)
	}
	pub, err := rtctest.PublishConfig(rtctest.NewAPI(), conn, webrtc.Configuration{
		ICEServers: hello.ICEServers, ICETransportPolicy: webrtc.ICETransportPolicyRelay,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if local := pub.PC.LocalDescription().SDP; !strings.Contains(local, " typ relay") || strings.Contains(local, " typ host") {
		t.Fatalf("the publisher's candidates are not relayed only:\n%s", local)
	}
	// The relay offers its own addresses only: the TURN server is for the
	// pages (see rtc.Config.ICEServers).
	if remote := pub.PC.RemoteDescription().SDP; strings.Contains(remote, " typ relay") || strings.Contains(remote, " typ srflx") {
		t.Errorf("the relay gathered through the ICE servers:\n%s", remote)
	}
	w := watch(t, serve, rtctest.NewAPI(), pub, 15*time.Second)
	view, tick, size, ctx := w.view, w.tick, w.size, w.ctx
	before := view.Packets.Load()
	for i := range 30 {
		<-tick.C
		if _, err := pub.WriteFrame(rtctest.Frame(size, i == 0), 30); err != nil {
			t.Fatal(err)
		}
	}
	for view.Packets.Load() < before+30*9 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if got := view.Packets.Load() - before; got < 30*9 {
		t.Errorf("the viewer got %d packets of 30 frames through TURN, want at least %d", got, 30*9)
	}
	pair, err := pub.PC.GetTransceivers()[0].Sender().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		t.Fatalf("publisher's selected candidate pair: %v %v", pair, err)
	}
	if pair.Local.Typ != webrtc.ICECandidateTypeRelay {
		t.Errorf("the publisher's media goes from a %s candidate, want relay", pair.Local.Typ)
	}
	relays := 0
	for _, st := range pub.PC.GetStats() {
		if c, ok := st.(webrtc.ICECandidateStats); ok && c.Type == webrtc.StatsTypeLocalCandidate && c.CandidateType == webrtc.ICECandidateTypeRelay {
			relays++
			if c.RelayProtocol != transport {
				t.Errorf("a relayed candidate reaches coturn over %q, want %s", c.RelayProtocol, transport)
			}
		}
	}
	if relays == 0 {
		t.Error("no relayed candidate in the publisher's statistics")
	}
}

// startCoturn runs coturn on loopback with a static long-term credential
// and returns its address (UDP and TCP), user and password. It stops when
// the test ends.
func startCoturn(t *testing.T) (addr, user, pass string) {
	t.Helper()
	bin := realpeer.Require(t, "turnserver")
	user, pass = "supportgate", "turn-test-password"
	dir := t.TempDir()
	for attempt := 0; ; attempt++ {
		port := freeUDPPort(t)
		var log bytes.Buffer
		var mu sync.Mutex
		cmd := exec.Command(bin,
			"--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1", "--listening-port", strconv.Itoa(port),
			"--min-port", "43200", "--max-port", "43299",
			"--lt-cred-mech", "--user", user+":"+pass, "--realm", "supportgate.test", "--fingerprint",
			// Loopback peers are refused unless allowed: the gateway is on
			// loopback here. In production --allowed-peer-ip names it.
			"--allow-loopback-peers", "--no-multicast-peers",
			"--no-tls", "--no-dtls", "--no-cli", "--no-tcp-relay",
			"--userdb", filepath.Join(dir, "turndb"), "--pidfile", filepath.Join(dir, "turn.pid"),
			"--log-file", "stdout", "--simple-log")
		cmd.Stdout = &lockedWriter{w: &log, mu: &mu}
		cmd.Stderr = cmd.Stdout
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-exited
			if t.Failed() {
				mu.Lock()
				t.Logf("coturn's log:\n%s", log.String())
				mu.Unlock()
			}
		})
		if waitUDP(port, exited) {
			return "127.0.0.1:" + strconv.Itoa(port), user, pass
		}
		if attempt == 2 {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("coturn did not start:\n%s", log.String())
		}
	}
}

// freeUDPPort returns a UDP port on loopback that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// waitUDP sends STUN binding requests to port on loopback until one is
// answered (true), coturn exits or 10 s pass (false).
func waitUDP(port int, exited <-chan struct{}) bool {
	c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		return false
	}
	defer c.Close()
	// A STUN binding request (RFC 5389): type 0x0001, length 0, the magic
	// cookie and a transaction id.
	req := []byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	buf := make([]byte, 1500)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		c.Write(req)
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, err := c.Read(buf); err == nil && n >= 20 && buf[0] == 1 && buf[1] == 1 {
			return true // a binding success response
		}
	}
	return false
}

// lockedWriter serializes writes to w (coturn's output is read while it
// runs).
type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
