package rtc

import (
	"context"
	"fmt"
	"strings"

	"github.com/pion/webrtc/v4"
)

// publish answers the publisher's offer and makes it the room's source,
// replacing any earlier one.
func (rm *Room) publish(ctx context.Context, m *member, offer string) (*publisher, error) {
	pc, err := rm.relay.newPC(Publisher)
	if err != nil {
		return nil, fmt.Errorf("rtc: %w", err)
	}
	pub := &publisher{pc: pc}
	pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if t.Kind() != webrtc.RTPCodecTypeVideo {
			return
		}
		pub.ssrc.Store(uint32(t.SSRC()))
		// OnTrack runs in a goroutine of its own; the room waits for it.
		rm.mu.Lock()
		if rm.closed {
			rm.mu.Unlock()
			return
		}
		rm.wg.Add(1)
		rm.mu.Unlock()
		defer rm.wg.Done()
		rm.keyframe(true) // for viewers that joined before the track started
		rm.forward(t)
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateFailed {
			m.cancel()
		}
	})
	err = pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer})
	var answer webrtc.SessionDescription
	if err == nil {
		answer, err = pc.CreateAnswer(nil)
	}
	var sdp string
	if err == nil {
		sdp, err = localDescription(ctx, pc, answer)
	}
	if err == nil && !strings.Contains(sdp, "VP8") {
		err = fmt.Errorf("the browser offered no VP8 video")
	}
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("rtc: publish: %w", err)
	}
	rm.mu.Lock()
	if rm.closed {
		rm.mu.Unlock()
		pc.Close()
		return nil, ErrClosed
	}
	old := rm.pub
	rm.pub = pub
	rm.mu.Unlock()
	if old != nil {
		old.pc.Close()
	}
	m.send(Message{Type: "answer", SDP: sdp})
	sharing := true
	rm.broadcast(Message{Type: "sharing", Sharing: &sharing})
	if rm.rec != nil {
		rm.rec.Event("screen.share.started", map[string]string{"by": m.name})
	}
	return pub, nil
}

// unpublish closes pub and, if it is still the room's source, tells the
// viewers that sharing stopped.
func (rm *Room) unpublish(pub *publisher) {
	pub.pc.Close()
	rm.mu.Lock()
	current := rm.pub == pub
	if current {
		rm.pub = nil
	}
	rm.mu.Unlock()
	if current {
		sharing := false
		rm.broadcast(Message{Type: "sharing", Sharing: &sharing})
		if rm.rec != nil {
			rm.rec.Event("screen.share.stopped", nil)
		}
	}
}

// receiveMTU is the largest RTP packet read from a publisher (pion's
// default receive MTU is 1460).
const receiveMTU = 1500

// forward relays t's packets to the viewers' track as they are, and hands
// copies to the recording's queue, until t ends. Nothing on this path
// waits for the recording.
func (rm *Room) forward(t *webrtc.TrackRemote) {
	var mr *mediaRecorder
	if rm.rec != nil {
		mr = rm.newMediaRecorder()
		rm.wg.Add(1) // the caller holds a count, so the room is still open
		go func() { defer rm.wg.Done(); mr.run() }()
		defer mr.close()
	}
	buf := make([]byte, receiveMTU)
	for {
		n, _, err := t.Read(buf)
		if err != nil {
			return
		}
		rm.packets.Add(1)
		rm.video.Write(buf[:n])
		if mr != nil {
			mr.push(buf[:n])
		}
	}
}
