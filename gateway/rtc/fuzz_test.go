package rtc_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"supportgate/gateway/rtc"
	"supportgate/gateway/rtc/rtctest"
)

// FuzzPublishOffer sends the relay a customer page's offer with any SDP
// (the page is the customer's browser: anything may come), as many as
// signaling allows (64 KiB). The relay must answer or say what is wrong,
// never panic, and stay usable: a well-formed offer after each one is
// answered.
func FuzzPublishOffer(f *testing.F) {
	good := pionOffer(f)
	f.Add(good)
	f.Add(strings.Replace(good, "VP8/90000", "VP9/90000", 1))
	f.Add(strings.Replace(good, "a=setup:actpass", "a=setup:bogus", 1))
	f.Add(strings.Replace(good, "m=video 9", "m=video -1", 1))
	f.Add("v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 H264/90000\r\n")
	f.Add("")

	_, room, _, _ := testRoom(f, 43400, nil)
	offer := func(t *testing.T, sdp string) rtc.Message {
		cli, leave := publisherConn(t, room)
		defer leave()
		cli.WriteJSON(rtc.Message{Type: "offer", SDP: sdp})
		ms := reply(t, cli, "answer", "error")
		return ms[len(ms)-1]
	}
	f.Fuzz(func(t *testing.T, sdp string) {
		if len(sdp) > 64<<10 {
			return // signaling refuses it before the relay sees it
		}
		if m := offer(t, sdp); m.Type == "error" && m.Text == "" {
			t.Error("an error without a reason")
		}
		if m := offer(t, good); m.Type != "answer" {
			t.Fatalf("a good offer after that one: %+v", m)
		}
	})
}

// FuzzTrickleCandidate sends the relay a customer page's trickled ICE
// candidate with any text, after a good offer. The relay must take it or
// refuse it with a reason, never panic, and go on serving the
// connection: a chat message sent after it comes back.
func FuzzTrickleCandidate(f *testing.F) {
	for _, c := range []string{
		"candidate:1 1 udp 2130706431 127.0.0.1 9 typ host",
		"candidate:2 1 tcp 1518280447 192.0.2.7 9 typ host tcptype active",
		"candidate:3 1 udp 1686052607 203.0.113.9 61000 typ srflx raddr 10.0.0.2 rport 61000 generation 0 ufrag abcd",
		"candidate:4 1 udp 41885439 198.51.100.3 50000 typ relay raddr 203.0.113.9 rport 61000",
		"candidate:5 1 udp 2130706431 f4d0c1b2-0000-4000-8000-123456789abc.local 54321 typ host",
		"candidate:6 1 udp 2130706431 ::1 9 typ host",
		"",
	} {
		f.Add(c)
	}
	good := pionOffer(f)
	_, room, _, _ := testRoom(f, 43600, nil)
	f.Fuzz(func(t *testing.T, cand string) {
		if len(cand) > 64<<10 {
			return // signaling refuses it before the relay sees it
		}
		cli, leave := publisherConn(t, room)
		defer leave()
		cli.WriteJSON(rtc.Message{Type: "offer", SDP: good})
		if ms := reply(t, cli, "answer", "error"); ms[len(ms)-1].Type != "answer" {
			t.Fatalf("the good offer: %+v", ms[len(ms)-1])
		}
		mid, line := "0", uint16(0)
		cli.WriteJSON(rtc.Message{Type: "candidate", Candidate: &webrtc.ICECandidateInit{Candidate: cand, SDPMid: &mid, SDPMLineIndex: &line}})
		cli.WriteJSON(rtc.Message{Type: "chat", Text: "still there?"})
		for _, m := range reply(t, cli, "chat") {
			if m.Type == "error" && m.Text == "" {
				t.Error("an error without a reason")
			}
		}
	})
}

// publisherConn connects a customer to the room and reads its hello; see
// join for leave.
func publisherConn(t testing.TB, room *rtc.Room) (*rtctest.Pipe, func()) {
	t.Helper()
	cli, leave := join(t, room, rtc.Publisher, "customer")
	if _, err := rtctest.Message(cli, "hello", nil); err != nil {
		leave()
		t.Fatal(err)
	}
	return cli, leave
}

// join connects a participant to room over an in-memory pipe. leave
// closes the pipe and returns once the room has let the participant go,
// so that the fuzz targets' next connection of the same name is not
// refused as one too many (maxPerName) while the room, on a loaded
// machine, is still closing this one's PeerConnection.
func join(t testing.TB, room *rtc.Room, role rtc.Role, name string) (cli *rtctest.Pipe, leave func()) {
	srv, cli := rtctest.NewPipe()
	served := make(chan struct{})
	go func() {
		defer close(served)
		room.Serve(srv, role, name)
	}()
	return cli, func() {
		cli.Close()
		select {
		case <-served:
		case <-time.After(30 * time.Second):
			t.Errorf("the room still serves %s 30 s after its connection closed", name)
		}
	}
}

// reply reads messages from cli until one of the types until arrives and
// returns them all, that one last, failing the test if none comes within
// 10 s or the relay closes the connection.
func reply(t testing.TB, cli *rtctest.Pipe, until ...string) []rtc.Message {
	t.Helper()
	got := make(chan []rtc.Message, 1)
	go func() {
		var ms []rtc.Message
		for {
			var m rtc.Message
			if cli.ReadJSON(&m) != nil {
				close(got)
				return
			}
			ms = append(ms, m)
			if slices.Contains(until, m.Type) {
				got <- ms
				return
			}
		}
	}()
	select {
	case ms, ok := <-got:
		if !ok {
			t.Fatal("the relay closed the signaling connection")
		}
		return ms
	case <-time.After(10 * time.Second):
		t.Fatalf("none of %v in 10 s", until)
	}
	return nil
}

// pionOffer is the offer of a pion publisher of VP8 and H.264, with its
// candidates.
func pionOffer(f *testing.F) string {
	pc, err := rtctest.NewAPI().NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		f.Fatal(err)
	}
	defer pc.Close()
	track, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "screen", "fuzz")
	if _, err := pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		f.Fatal(err)
	}
	o, err := pc.CreateOffer(nil)
	var sdp string
	if err == nil {
		sdp, err = rtctest.Gather(pc, o)
	}
	if err != nil {
		f.Fatal(err)
	}
	return sdp
}

// FuzzViewerAnswer sends the relay a viewer page's answer with any SDP,
// after the relay's offer. The relay must take it or refuse it with a
// reason, never panic, and go on serving the connection: a chat message
// sent after it comes back.
func FuzzViewerAnswer(f *testing.F) {
	_, room, _, _ := testRoom(f, 43700, nil)
	viewerConn := func(t testing.TB) (*rtctest.Pipe, func(), string) {
		t.Helper()
		cli, leave := join(t, room, rtc.Viewer, "alice")
		ms := reply(t, cli, "offer")
		return cli, leave, ms[len(ms)-1].SDP
	}
	// A real answer to an offer of the relay's, for the seeds.
	_, leave, offer := viewerConn(f)
	pc, err := rtctest.NewAPI().NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		f.Fatal(err)
	}
	answer := ""
	if err = pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err == nil {
		var a webrtc.SessionDescription
		if a, err = pc.CreateAnswer(nil); err == nil {
			answer, err = rtctest.Gather(pc, a)
		}
	}
	pc.Close()
	leave()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(answer)
	f.Add(strings.Replace(answer, "a=setup:active", "a=setup:actpass", 1))
	f.Add(strings.Replace(answer, "a=recvonly", "a=sendonly", 1))
	f.Add(strings.Replace(answer, "m=video 9", "m=audio 9", 1))
	f.Add("")
	f.Fuzz(func(t *testing.T, sdp string) {
		if len(sdp) > 64<<10 {
			return // signaling refuses it before the relay sees it
		}
		cli, leave, _ := viewerConn(t)
		defer leave()
		cli.WriteJSON(rtc.Message{Type: "answer", SDP: sdp})
		cli.WriteJSON(rtc.Message{Type: "chat", Text: "still there?"})
		for _, m := range reply(t, cli, "chat") {
			if m.Type == "error" && m.Text == "" {
				t.Error("an error without a reason")
			}
		}
	})
}
