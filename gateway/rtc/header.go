package rtc

import (
	"github.com/pion/interceptor"
)

// headerCache is an interceptor, the first (innermost) on a publisher's
// PeerConnection, that parses each RTP packet's header once, into a
// header and an attributes map it keeps per stream, and hands both to the
// interceptors after it (the NACK generator, the receiver reports and
// twccFeedback each ask the attributes for the header). Without it the
// first of them made a map and a header, with its extensions, for every
// packet received: half of the relay's allocations.
//
// The map goes on to the caller of TrackRemote.Read, which must not keep
// it or the header past the next Read (Room.forward ignores both).
type headerCache struct{ interceptor.NoOp }

// headerCacheFactory makes a headerCache per PeerConnection.
type headerCacheFactory struct{}

func (headerCacheFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &headerCache{}, nil
}

var _ interceptor.Factory = headerCacheFactory{}

// minimalRTP is the smallest valid RTP header (version 2), parsed once to
// put a header of the stream's own into its attributes.
var minimalRTP = []byte{0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

// BindRemoteStream parses each packet's header into the stream's header.
func (*headerCache) BindRemoteStream(_ *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	attrs := interceptor.Attributes{}
	// GetRTPHeader on an empty map parses into a new header and keeps it
	// there: from then on it returns that header, which Unmarshal below
	// refills for each packet. (The attributes' key is pion's own.)
	h, err := attrs.GetRTPHeader(minimalRTP)
	if err != nil {
		return r
	}
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := r.Read(b, a)
		if err != nil || a != nil { // a map from below: leave it to the others
			return n, a, err
		}
		if _, err := h.Unmarshal(b[:n]); err != nil {
			return 0, nil, err
		}
		return n, attrs, nil
	})
}
