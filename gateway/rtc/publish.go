package rtc

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"
)

// publish answers the publisher's offer and makes it the room's source,
// replacing any earlier one.
func (rm *Room) publish(ctx context.Context, m *member, offer string) (*publisher, error) {
	pc, err := rm.relay.newPC()
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

// forward relays t's packets to the viewers' track and hands whole VP8
// frames to the recorder, until t ends.
func (rm *Room) forward(t *webrtc.TrackRemote) {
	base := time.Since(rm.start) // this publisher's time origin in the recording
	sb := samplebuilder.New(256, &codecs.VP8Packet{}, 90000, samplebuilder.WithMaxTimeDelay(time.Second))
	var (
		first  = true
		lastTS uint32
		ticks  int64 // unwrapped RTP time since firstTS
	)
	for {
		pkt, _, err := t.ReadRTP()
		if err != nil {
			return
		}
		rm.packets.Add(1)
		rm.video.WriteRTP(pkt)
		if rm.rec == nil {
			continue
		}
		sb.Push(pkt)
		for s := sb.Pop(); s != nil; s = sb.Pop() {
			ts := s.PacketTimestamp
			if first {
				first, lastTS = false, ts
			}
			ticks += int64(int32(ts - lastTS))
			lastTS = ts
			if len(s.Data) == 0 {
				continue
			}
			at := base + time.Duration(ticks)*time.Second/90000
			key := s.Data[0]&1 == 0
			if err := rm.rec.Media("vp8", at, s.Data, key); err == nil {
				rm.frames.Add(1)
			}
		}
	}
}
