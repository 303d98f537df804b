package rtc

// h264Payload is the depacketizer of H.264 in packetization mode 1 (RFC
// 6184): single NAL unit packets, STAP-A aggregates and FU-A fragments,
// which are what browsers send. Frames come out as access units in Annex B
// form (each NAL unit after a 00 00 00 01 start code), the form the
// recorder stores and IVF export writes.
//
// RTP does not mark the first packet of an access unit, so a packet is
// taken to start one when its first NAL unit can only begin one (H.264
// section 7.4.1.2.3): an access unit delimiter, SPS, PPS or SEI, or the
// first slice of a picture (first_mb_in_slice 0). The packets of a frame
// end at the marker bit, as for VP8.
type h264Payload struct{}

// NAL unit types (H.264 table 7-1, RFC 6184 table 1).
const (
	nalSlice  = 1
	nalIDR    = 5
	nalSEI    = 6
	nalSPS    = 7
	nalPPS    = 8
	nalAUD    = 9
	nalSTAPA  = 24
	nalFUA    = 28
	nalTypeOf = 0x1f
)

var startCode = []byte{0, 0, 0, 1}

func (h264Payload) codec() string { return "h264" }

func (h264Payload) parse(payload []byte) ([]byte, bool, bool) {
	if len(payload) == 0 || payload[0]&0x80 != 0 { // forbidden_zero_bit
		return nil, false, false
	}
	switch t := payload[0] & nalTypeOf; {
	case t >= 1 && t <= 23:
		return payload, startsAccessUnit(payload), true
	case t == nalSTAPA:
		start := false
		rest := payload[1:]
		if len(rest) == 0 {
			return nil, false, false
		}
		for first := true; len(rest) > 0; first = false {
			if len(rest) < 2 {
				return nil, false, false
			}
			n := int(rest[0])<<8 | int(rest[1])
			if n == 0 || len(rest) < 2+n || rest[2]&0x80 != 0 {
				return nil, false, false
			}
			if first {
				start = startsAccessUnit(rest[2 : 2+n])
			}
			rest = rest[2+n:]
		}
		return payload, start, true
	case t == nalFUA:
		if len(payload) < 3 {
			return nil, false, false
		}
		fu := payload[1]
		s, e := fu&0x80 != 0, fu&0x40 != 0
		inner := fu & nalTypeOf
		if s && e || inner == 0 || inner >= nalSTAPA {
			return nil, false, false
		}
		start := s && startsAccessUnitType(inner, payload[2])
		return payload, start, true
	}
	return nil, false, false // STAP-B, MTAP, FU-B: not in mode 1
}

// startsAccessUnit reports whether the NAL unit nal can only be the first
// of an access unit.
func startsAccessUnit(nal []byte) bool {
	if len(nal) < 2 {
		return len(nal) == 1 && startsAccessUnitType(nal[0]&nalTypeOf, 0x80)
	}
	return startsAccessUnitType(nal[0]&nalTypeOf, nal[1])
}

// startsAccessUnitType is startsAccessUnit for a NAL unit of type t whose
// first byte after the header is b: a slice's header starts with
// first_mb_in_slice, whose Exp-Golomb code for 0 is a single 1 bit.
func startsAccessUnitType(t, b byte) bool {
	switch t {
	case nalAUD, nalSPS, nalPPS, nalSEI:
		return true
	case nalSlice, nalIDR:
		return b&0x80 != 0
	}
	return false
}

// appendTo appends the NAL units of a payload parse accepted, each after a
// start code; a FU-A adds the NAL header with its first fragment and only
// data with the others.
func (h264Payload) appendTo(frame, body []byte) []byte {
	switch body[0] & nalTypeOf {
	case nalSTAPA:
		rest := body[1:]
		for len(rest) >= 2 {
			n := int(rest[0])<<8 | int(rest[1])
			if len(rest) < 2+n {
				break
			}
			frame = append(append(frame, startCode...), rest[2:2+n]...)
			rest = rest[2+n:]
		}
		return frame
	case nalFUA:
		if body[1]&0x80 != 0 {
			frame = append(frame, startCode...)
			frame = append(frame, body[0]&0xe0|body[1]&nalTypeOf)
		}
		return append(frame, body[2:]...)
	}
	return append(append(frame, startCode...), body...)
}

// key reports whether the access unit holds an IDR picture, which a
// decoder can start from (with the SPS and PPS browsers send before it).
func (h264Payload) key(frame []byte) bool {
	for i := 0; i+3 < len(frame); i++ {
		if frame[i] == 0 && frame[i+1] == 0 && frame[i+2] == 1 {
			if frame[i+3]&nalTypeOf == nalIDR {
				return true
			}
			i += 2
		}
	}
	return false
}
