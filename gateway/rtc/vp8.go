package rtc

import "github.com/pion/rtp/codecs"

// vp8Payload is the depacketizer of VP8 (RFC 7741): each payload is a
// payload descriptor and a piece of the frame, and a frame starts with the
// packet whose descriptor has S=1 and partition index 0.
type vp8Payload struct{}

func (vp8Payload) codec() string { return "vp8" }

func (vp8Payload) parse(payload []byte) ([]byte, bool, bool) {
	var p codecs.VP8Packet
	body, err := p.Unmarshal(payload)
	if err != nil {
		return nil, false, false
	}
	return body, p.S == 1 && p.PID == 0, true
}

func (vp8Payload) appendTo(frame, body []byte) []byte { return append(frame, body...) }

// key reports a VP8 key frame: bit 0 of the frame tag is 0 (RFC 6386,
// section 9.1).
func (vp8Payload) key(frame []byte) bool { return len(frame) > 0 && frame[0]&1 == 0 }
