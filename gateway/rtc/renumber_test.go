package rtc

import (
	"testing"
	"time"

	"github.com/pion/rtp"
)

// TestRenumberShares: a second share, numbered from wherever its browser
// starts (here lower), carries on the outgoing track's sequence numbers
// and timestamps, the timestamp advanced by the pause between the shares;
// a packet resent or reordered does not pull the track's position back.
func TestRenumberShares(t *testing.T) {
	var o outNumbering
	t0 := time.Unix(1000, 0)
	var first renumber
	var h rtp.Header
	for i := range 10 {
		h = rtp.Header{SequenceNumber: 60000 + uint16(i), Timestamp: 4000000000 + uint32(i)*3000}
		o.apply(&first, &h, t0)
	}
	if h.SequenceNumber != 60009 || h.Timestamp != 4000027000 {
		t.Fatalf("the first share was shifted: %d %d", h.SequenceNumber, h.Timestamp)
	}
	late := rtp.Header{SequenceNumber: 60003, Timestamp: 4000009000} // resent
	o.apply(&first, &late, t0)

	var second renumber
	h = rtp.Header{SequenceNumber: 17, Timestamp: 5}
	o.apply(&second, &h, t0.Add(2*time.Second))
	if h.SequenceNumber != 60010 {
		t.Errorf("the second share starts at sequence %d, want 60010", h.SequenceNumber)
	}
	if want := uint32(4000027000) + 2*videoClock + 1; h.Timestamp != want {
		t.Errorf("the second share starts at timestamp %d, want %d (2 s on)", h.Timestamp, want)
	}
	h = rtp.Header{SequenceNumber: 18, Timestamp: 3005}
	o.apply(&second, &h, t0.Add(2*time.Second))
	if h.SequenceNumber != 60011 || h.Timestamp != 4000027000+2*videoClock+1+3000 {
		t.Errorf("the second share's next packet: %d %d", h.SequenceNumber, h.Timestamp)
	}
}
