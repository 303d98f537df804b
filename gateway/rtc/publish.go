package rtc

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"
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
	pc.OnTrack(func(t *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		codec := depacketizerFor(t.Codec().RTPCodecCapability)
		if t.Kind() != webrtc.RTPCodecTypeVideo || codec == nil {
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
		video, err := rm.useCodec(t.Codec().RTPCodecCapability)
		if err != nil {
			rm.relay.log.Warn("screen share: no track for the publisher's codec", "room", rm.id, "codec", t.Codec().MimeType, "err", err)
			return
		}
		// Reading the publisher's RTCP runs it through the interceptors:
		// the receiver reports then carry the time of its last sender
		// report (LSR, DLSR), from which the browser learns the round trip.
		if err := rm.goLocked(func() { drainRTCP(recv) }); err != nil {
			return
		}
		rm.keyframe(true) // for viewers that joined before the track started
		rm.forward(t, video, codec)
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateFailed {
			m.cancel()
		}
	})
	err = pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer})
	if err == nil {
		preferCodecs(pc)
	}
	var answer webrtc.SessionDescription
	if err == nil {
		answer, err = pc.CreateAnswer(nil)
	}
	var sdp string
	if err == nil {
		sdp, err = localDescription(ctx, pc, answer)
	}
	if err == nil && !strings.Contains(sdp, "VP8/90000") && !strings.Contains(sdp, "H264/90000") {
		err = fmt.Errorf("the browser offered neither VP8 nor H.264 video")
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

// drainRTCP reads r's RTCP until its PeerConnection closes.
func drainRTCP(r *webrtc.RTPReceiver) {
	for {
		if _, _, err := r.ReadRTCP(); err != nil {
			return
		}
	}
}

// preferCodecs orders the codecs of the answer to a publisher's offer as
// the relay prefers them (videoCodecs), where pion would keep the offer's
// order: the browser sends the first codec of the answer. Codecs the offer
// did not have are left out (pion refuses them as preferences). pion
// answers with the RTCP feedback common to a preference and its media
// engine, so each preference lists all the publishers' feedback.
func preferCodecs(pc *webrtc.PeerConnection) {
	for _, tr := range pc.GetTransceivers() {
		if tr.Kind() != webrtc.RTPCodecTypeVideo {
			continue
		}
		var prefs []webrtc.RTPCodecParameters
		for _, c := range videoCodecs {
			c.PayloadType = 0 // the offer's
			c.RTCPFeedback = append(slices.Clone(c.RTCPFeedback), webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBTransportCC})
			if tr.SetCodecPreferences(append(prefs, c)) == nil {
				prefs = append(prefs, c)
			}
		}
		if len(prefs) > 0 {
			tr.SetCodecPreferences(prefs)
		}
	}
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

// forward relays t's packets to the viewers' track video as they are, and
// hands them to the recording's queue, until t ends. Nothing on this path
// waits for the recording.
func (rm *Room) forward(t *webrtc.TrackRemote, video *webrtc.TrackLocalStaticRTP, codec depacketizer) {
	var mr *mediaRecorder
	if rm.rec != nil {
		mr = rm.newMediaRecorder(codec)
		rm.wg.Add(1) // the caller holds a count, so the room is still open
		go func() { defer rm.wg.Done(); mr.run() }()
		defer mr.close()
	}
	b := new(pktBuf)
	// pkt is parsed into afresh for each packet, reusing its header's
	// extensions (TrackLocalStaticRTP.Write would parse into a pooled
	// packet whose extensions it allocates anew each time).
	var pkt rtp.Packet
	var shift renumber
	for {
		n, _, err := t.Read(b.b[:])
		if err != nil {
			return
		}
		b.n = n
		rm.packets.Add(1)
		if pkt.Unmarshal(b.b[:n]) == nil {
			rm.out.apply(&shift, &pkt.Header, time.Now())
			video.WriteRTP(&pkt)
		}
		if mr != nil {
			b = mr.swap(b) // the recording's now; read the next into another
		}
	}
}

// outNumbering is where the room's outgoing track stands: the highest
// sequence number and timestamp sent on it, and when. The viewers' track
// lives as long as the room, with one SSRC, while each share is a new
// PeerConnection that numbers its packets from wherever its browser starts:
// forwarded as they are, a share after the first jumps the viewer's stream
// back (about half the time), and the viewer drops it all as replays or
// old packets, its video frozen. So each share is shifted to carry on the
// numbering (renumber).
type outNumbering struct {
	mu      sync.Mutex
	started bool
	seq     uint16
	ts      uint32
	at      time.Time
}

// renumber is one share's shift onto the outgoing track, set at its first
// packet.
type renumber struct {
	set bool
	seq uint16
	ts  uint32
}

// videoClock is the RTP clock rate of VP8 and H.264.
const videoClock = 90000

// apply shifts h by r, setting r at the share's first packet so that it
// follows on from the last packet sent (the timestamp also advanced by the
// time since), and notes h as sent.
func (o *outNumbering) apply(r *renumber, h *rtp.Header, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !r.set {
		r.set = true
		if o.started {
			gap := uint32(max(now.Sub(o.at), 0).Seconds()*videoClock) + 1
			r.seq = o.seq + 1 - h.SequenceNumber
			r.ts = o.ts + gap - h.Timestamp
		}
	}
	h.SequenceNumber += r.seq
	h.Timestamp += r.ts
	// Keep the highest sent: a resent or reordered packet comes lower.
	if !o.started || int16(h.SequenceNumber-o.seq) > 0 {
		o.seq, o.ts, o.at, o.started = h.SequenceNumber, h.Timestamp, now, true
	}
}
