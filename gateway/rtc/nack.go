package rtc

import (
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

const (
	// nackHistory is how many packets sent to a viewer are kept for
	// resending: about 1.9 s of a 2.5 Mbit/s share, 1 s at 5 Mbit/s, as
	// long as libwebrtc's senders keep theirs (max(1 s, 3 round trips))
	// for a viewer less than 330 ms away. A power of two. pion's NACK
	// responder keeps 1024; half of that takes half the memory (750 KiB
	// a viewer) and, at 100 viewers, fewer of the relay's writes go to
	// memory the caches no longer hold (bench/README.md, BenchmarkRelay,
	// round 5).
	nackHistory = 512
	// nackResendGap is added to the round-trip time: a packet is not
	// resent again sooner than that, as the last resend may still be on
	// its way.
	nackResendGap = 5 * time.Millisecond
)

// nackResponder is an interceptor that keeps the last nackHistory RTP
// packets sent on each outgoing stream that negotiated NACK and resends
// those a viewer reports lost (RTCP generic NACK). It does what pion's
// nack.ResponderInterceptor does for the relay, without RTX (the relay
// negotiates none), but keeps the packets as bytes in one buffer per
// stream, written in place: pion's copied every packet sent into objects
// from pools, which made most of the relay's allocations and garbage.
//
// Resends run on the goroutine that reads the viewer's RTCP (the room's
// readRTCP), not on one of their own.
type nackResponder struct {
	interceptor.NoOp

	now func() time.Time // time.Now; tests set it before binding streams

	mu      sync.Mutex // guards streams
	streams map[uint32]*sentPackets
}

// nackResponderFactory makes a nackResponder per PeerConnection.
type nackResponderFactory struct{}

func (nackResponderFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &nackResponder{now: time.Now, streams: map[uint32]*sentPackets{}}, nil
}

var _ interceptor.Factory = nackResponderFactory{}

// sentPackets is the history of one outgoing stream.
type sentPackets struct {
	writer interceptor.RTPWriter
	now    func() time.Time
	start  time.Time // the origin of sentSlot.resent

	mu    sync.Mutex // guards the fields below
	buf   []byte     // nackHistory slots of receiveMTU bytes: header, then payload
	slots [nackHistory]sentSlot
	rtt   time.Duration // smoothed, from the viewer's receiver reports
}

// sentSlot has no pointers, so the GC need not scan the slots.
type sentSlot struct {
	ok     bool // holds a packet
	seq    uint16
	hdr, n int           // header length; header and payload length
	pad    byte          // padding the packet was sent with (not kept)
	resent time.Duration // when it was last resent, since start; 0: never
}

func nackNegotiated(info *interceptor.StreamInfo) bool {
	for _, fb := range info.RTCPFeedback {
		if fb.Type == "nack" && fb.Parameter == "" {
			return true
		}
	}
	return false
}

// BindLocalStream keeps a copy of each packet written to the stream.
func (r *nackResponder) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	if !nackNegotiated(info) {
		return w
	}
	s := &sentPackets{writer: w, now: r.now, start: r.now(), buf: make([]byte, nackHistory*receiveMTU)}
	r.mu.Lock()
	r.streams[info.SSRC] = s
	r.mu.Unlock()
	ssrc := info.SSRC
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if h.SSRC == ssrc {
			s.keep(h, payload)
		}
		return w.Write(h, payload, a)
	})
}

// keep copies the packet into its slot, replacing the one nackHistory
// sequence numbers older.
func (s *sentPackets) keep(h *rtp.Header, payload []byte) {
	i := int(h.SequenceNumber % nackHistory)
	s.mu.Lock()
	defer s.mu.Unlock()
	slot := &s.slots[i]
	slot.ok = false
	dst := s.buf[i*receiveMTU : (i+1)*receiveMTU]
	if h.MarshalSize()+len(payload) > len(dst) {
		return
	}
	hdr, err := h.MarshalTo(dst)
	if err != nil {
		return
	}
	*slot = sentSlot{ok: true, seq: h.SequenceNumber, hdr: hdr, n: hdr + copy(dst[hdr:], payload), pad: h.PaddingSize}
}

// UnbindLocalStream drops the stream's history.
func (r *nackResponder) UnbindLocalStream(info *interceptor.StreamInfo) {
	r.mu.Lock()
	delete(r.streams, info.SSRC)
	r.mu.Unlock()
}

// Close drops every history.
func (r *nackResponder) Close() error {
	r.mu.Lock()
	clear(r.streams)
	r.mu.Unlock()
	return nil
}

// BindRTCPReader watches the viewer's RTCP for NACKs, and for receiver
// reports, which give the round-trip time.
func (r *nackResponder) BindRTCPReader(reader interceptor.RTCPReader) interceptor.RTCPReader {
	return interceptor.RTCPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := reader.Read(b, a)
		if err != nil {
			return 0, nil, err
		}
		if a == nil {
			a = interceptor.Attributes{}
		}
		pkts, err := a.GetRTCPPackets(b[:n])
		if err != nil {
			return 0, nil, err
		}
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.ReceiverReport:
				r.roundTrip(p.Reports)
			case *rtcp.SenderReport:
				r.roundTrip(p.Reports)
			case *rtcp.TransportLayerNack:
				r.resend(p)
			}
		}
		return n, a, nil
	})
}

func (r *nackResponder) stream(ssrc uint32) *sentPackets {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.streams[ssrc]
}

// roundTrip averages the round-trip times the reports give (RFC 3550
// 6.4.1: now - LSR - DLSR, in 1/65536 s).
func (r *nackResponder) roundTrip(reports []rtcp.ReceptionReport) {
	now := ntp32(r.now())
	for _, rep := range reports {
		s := r.stream(rep.SSRC)
		if s == nil || rep.LastSenderReport == 0 {
			continue
		}
		d := now - rep.LastSenderReport - rep.Delay
		if d >= 1<<31 {
			continue
		}
		rtt := time.Duration(d) * time.Second / (1 << 16)
		s.mu.Lock()
		if s.rtt == 0 {
			s.rtt = rtt
		} else {
			s.rtt += (rtt - s.rtt) / 8
		}
		s.mu.Unlock()
	}
}

// ntp32 is the middle 32 bits of t as an NTP timestamp.
func ntp32(t time.Time) uint32 {
	const ntpEpochOffset = 2208988800 // 1900 to 1970, in seconds
	sec := uint64(t.Unix() + ntpEpochOffset)
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return uint32((sec<<32 | frac) >> 16)
}

// resend writes again each packet the NACK asks for that is still kept
// and was not resent within the last round trip.
func (r *nackResponder) resend(nack *rtcp.TransportLayerNack) {
	s := r.stream(nack.MediaSSRC)
	if s == nil {
		return
	}
	for _, pair := range nack.Nacks {
		pair.Range(func(seq uint16) bool {
			s.resend(seq)
			return true
		})
	}
}

func (s *sentPackets) resend(seq uint16) {
	i := int(seq % nackHistory)
	now := max(s.now().Sub(s.start), 1) // 0 means never
	s.mu.Lock()
	slot := &s.slots[i]
	if !slot.ok || slot.seq != seq || (slot.resent != 0 && now-slot.resent < s.rtt+nackResendGap) {
		s.mu.Unlock()
		return
	}
	slot.resent = now
	pkt := make([]byte, slot.n) // resends are rare: a copy of their own
	copy(pkt, s.buf[i*receiveMTU:])
	hdrLen, pad := slot.hdr, slot.pad
	s.mu.Unlock()
	var h rtp.Header
	if _, err := h.Unmarshal(pkt[:hdrLen]); err != nil {
		return
	}
	h.PaddingSize = pad
	s.writer.Write(&h, pkt[hdrLen:], interceptor.Attributes{})
}
