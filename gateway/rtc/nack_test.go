package rtc

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// sentLog is the RTP writer below the responder: it notes what is written.
type sentLog struct{ pkts [][]byte }

func (l *sentLog) Write(h *rtp.Header, payload []byte, _ interceptor.Attributes) (int, error) {
	buf := make([]byte, rtp.PacketMarshalSize(h, payload))
	n, err := rtp.MarshalPacketTo(buf, h, payload)
	if err != nil {
		return 0, err
	}
	l.pkts = append(l.pkts, buf[:n])
	return n, nil
}

// rtcpFeed is the RTCP reader below the responder: it returns one packet.
type rtcpFeed struct{ b []byte }

func (f *rtcpFeed) Read(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
	return copy(b, f.b), a, nil
}

func nackFor(ssrc uint32, seqs ...uint16) []byte {
	n := &rtcp.TransportLayerNack{MediaSSRC: ssrc, Nacks: rtcp.NackPairsFromSequenceNumbers(seqs)}
	b, err := n.Marshal()
	if err != nil {
		panic(err)
	}
	return b
}

func testPacket(seq uint16, padding byte) *rtp.Packet {
	p := &rtp.Packet{
		Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: 9000 * uint32(seq), SSRC: 7,
			Marker: seq%3 == 0, Padding: padding > 0, PaddingSize: padding},
		Payload: bytes.Repeat([]byte{byte(seq)}, 100+int(seq%50)),
	}
	if seq%2 == 0 {
		p.Header.SetExtension(1, []byte{byte(seq), 1, 2})
	}
	return p
}

func marshal(t *testing.T, p *rtp.Packet) []byte {
	t.Helper()
	buf := make([]byte, rtp.PacketMarshalSize(&p.Header, p.Payload))
	n, err := rtp.MarshalPacketTo(buf, &p.Header, p.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

func TestNACKResponder(t *testing.T) {
	i, err := nackResponderFactory{}.NewInterceptor("")
	if err != nil {
		t.Fatal(err)
	}
	r := i.(*nackResponder)
	// A clock of the test's: the subtests below take longer than the
	// resend gap on a loaded machine, and time moves only when told.
	clock := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return clock }
	info := &interceptor.StreamInfo{SSRC: 7, RTCPFeedback: []interceptor.RTCPFeedback{{Type: "nack"}}}
	sent := &sentLog{}
	w := r.BindLocalStream(info, sent)
	feed := &rtcpFeed{}
	rr := r.BindRTCPReader(feed)
	nackAll := func(ssrc uint32, seqs ...uint16) []byte {
		t.Helper()
		sent.pkts = nil
		feed.b = nackFor(ssrc, seqs...)
		if _, _, err := rr.Read(make([]byte, 1500), nil); err != nil {
			t.Fatal(err)
		}
		return bytes.Join(sent.pkts, []byte("|"))
	}

	var want [][]byte
	for seq := range uint16(nackHistory + 10) {
		p := testPacket(seq, byte(seq%4))
		want = append(want, marshal(t, p))
		if _, err := w.Write(&p.Header, p.Payload, nil); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name string
		ssrc uint32
		seqs []uint16
		want [][]byte
	}{
		{"one", 7, []uint16{nackHistory + 3}, [][]byte{want[nackHistory+3]}},
		{"several, with padding and extensions", 7, []uint16{nackHistory + 4, nackHistory + 5, nackHistory + 6, nackHistory + 9}, [][]byte{want[nackHistory+4], want[nackHistory+5], want[nackHistory+6], want[nackHistory+9]}},
		{"oldest kept", 7, []uint16{11}, [][]byte{want[11]}},
		{"overwritten", 7, []uint16{9}, nil},
		{"not sent yet", 7, []uint16{nackHistory + 20}, nil},
		{"again within the round trip", 7, []uint16{nackHistory + 3}, nil},
		{"another stream", 8, []uint16{nackHistory + 1}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := nackAll(tt.ssrc, tt.seqs...)
			if w := bytes.Join(tt.want, []byte("|")); !bytes.Equal(got, w) {
				t.Errorf("resent %x, want %x", got, w)
			}
		})
	}

	t.Run("again after the round trip", func(t *testing.T) {
		clock = clock.Add(nackResendGap + time.Millisecond)
		if got, w := nackAll(7, nackHistory+3), want[nackHistory+3]; !bytes.Equal(got, w) {
			t.Errorf("resent %x, want %x", got, w)
		}
	})
	t.Run("unbound", func(t *testing.T) {
		r.UnbindLocalStream(info)
		if got := nackAll(7, nackHistory+4); len(got) != 0 {
			t.Errorf("resent %x after unbind", got)
		}
	})
}

func TestNACKResponderNotNegotiated(t *testing.T) {
	i, _ := nackResponderFactory{}.NewInterceptor("")
	sent := &sentLog{}
	info := &interceptor.StreamInfo{SSRC: 7, RTCPFeedback: []interceptor.RTCPFeedback{{Type: "nack", Parameter: "pli"}}}
	if w := i.BindLocalStream(info, sent); fmt.Sprintf("%p", w) != fmt.Sprintf("%p", sent) {
		t.Errorf("a stream without NACK is wrapped")
	}
}

func TestNTP32(t *testing.T) {
	// 2026-01-01T00:00:00.5Z: 3976214400 s since 1900, and half a second.
	at := time.Date(2026, 1, 1, 0, 0, 0, 500_000_000, time.UTC)
	if got, want := ntp32(at), uint32(3976214400&0xffff)<<16|0x8000; got != want {
		t.Errorf("ntp32 = %#x, want %#x", got, want)
	}
}

func TestNACKRoundTrip(t *testing.T) {
	i, _ := nackResponderFactory{}.NewInterceptor("")
	r := i.(*nackResponder)
	info := &interceptor.StreamInfo{SSRC: 7, RTCPFeedback: []interceptor.RTCPFeedback{{Type: "nack"}}}
	r.BindLocalStream(info, &sentLog{})
	// A report saying the sender report went out 100 ms ago and was held
	// 20 ms: a round trip of 80 ms.
	now := ntp32(time.Now())
	rep := rtcp.ReceptionReport{SSRC: 7, LastSenderReport: now - 100*65536/1000, Delay: 20 * 65536 / 1000}
	r.roundTrip([]rtcp.ReceptionReport{rep})
	got := r.stream(7).rtt
	if got < 75*time.Millisecond || got > 90*time.Millisecond {
		t.Errorf("rtt = %v, want about 80ms", got)
	}
}
