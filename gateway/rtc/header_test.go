package rtc

import (
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

// TestHeaderCache reads packets through a headerCache: the attributes it
// returns give each packet's own header, parsed once, without allocating;
// a map from the reader below is passed on as it is.
func TestHeaderCache(t *testing.T) {
	var next []byte
	var below interceptor.Attributes
	src := interceptor.RTPReaderFunc(func(b []byte, _ interceptor.Attributes) (int, interceptor.Attributes, error) {
		return copy(b, next), below, nil
	})
	r := (&headerCache{}).BindRemoteStream(&interceptor.StreamInfo{}, src)
	packet := func(seq uint16, ext []byte) []byte {
		p := rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, SSRC: 7, PayloadType: 96}, Payload: []byte{1, 2, 3}}
		if ext != nil {
			if err := p.SetExtension(3, ext); err != nil {
				t.Fatal(err)
			}
		}
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	buf := make([]byte, 1500)
	for i, ext := range [][]byte{{0xaa, 0xbb}, nil, {0xcc, 0xdd}} {
		seq := uint16(1000 + i)
		next = packet(seq, ext)
		_, a, err := r.Read(buf, nil)
		if err != nil {
			t.Fatal(err)
		}
		h, err := a.GetRTPHeader(nil) // from the map: nothing left to parse
		if err != nil {
			t.Fatal(err)
		}
		if h.SequenceNumber != seq || h.SSRC != 7 || string(h.GetExtension(3)) != string(ext) {
			t.Errorf("packet %d: header seq %d ssrc %d extension %x", i, h.SequenceNumber, h.SSRC, h.GetExtension(3))
		}
	}
	next = packet(2000, []byte{1, 2})
	if n := testing.AllocsPerRun(100, func() {
		_, a, _ := r.Read(buf, nil)
		a.GetRTPHeader(buf)
	}); n != 0 {
		t.Errorf("%v allocations per packet read", n)
	}
	below = interceptor.Attributes{"mine": 1}
	if _, a, _ := r.Read(buf, nil); a.Get("mine") != 1 {
		t.Errorf("the map from below was replaced: %v", a)
	}
	next = []byte{0x80, 96}
	below = nil
	if _, _, err := r.Read(buf, nil); err == nil {
		t.Error("a 2-byte packet read without error")
	}
}
