package rtc_test

import (
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

	_, _, serve, _ := testRoom(f, 43400, nil)
	offer := func(t *testing.T, sdp string) rtc.Message {
		cli := serve(rtc.Publisher, "customer")
		defer cli.Close()
		if _, err := rtctest.Message(cli, "hello", nil); err != nil {
			t.Fatal(err)
		}
		if err := cli.WriteJSON(rtc.Message{Type: "offer", SDP: sdp}); err != nil {
			t.Fatal(err)
		}
		reply := make(chan rtc.Message, 1)
		go func() {
			for {
				var m rtc.Message
				if cli.ReadJSON(&m) != nil {
					close(reply)
					return
				}
				if m.Type == "answer" || m.Type == "error" {
					reply <- m
					return
				}
			}
		}()
		select {
		case m, ok := <-reply:
			if !ok {
				t.Fatal("the relay closed the signaling connection")
			}
			return m
		case <-time.After(10 * time.Second):
			t.Fatal("no answer and no error in 10 s")
		}
		return rtc.Message{}
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
	if err != nil {
		f.Fatal(err)
	}
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(o); err != nil {
		f.Fatal(err)
	}
	<-done
	return pc.LocalDescription().SDP
}
