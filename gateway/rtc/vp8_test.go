package rtc

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/pion/rtp"
)

// testFrame is a VP8 frame of the tests: its bytes name it.
func testFrame(id, size int) []byte {
	f := make([]byte, size)
	for i := range f {
		f[i] = byte(id*7 + i)
	}
	return f
}

type testPkt struct {
	seq    uint16
	ts     uint32
	marker bool
	data   []byte // the RTP payload: VP8 descriptor and data
}

// packetize splits frames into packets of at most mtu bytes of data, the
// way browsers do: S=1 on each frame's first packet, the marker on its
// last.
func packetize(seq0 uint16, ts0 uint32, frames [][]byte, mtu int) []testPkt {
	var out []testPkt
	seq := seq0
	for k, f := range frames {
		for off := 0; off < len(f); off += mtu {
			end := min(off+mtu, len(f))
			desc := byte(0)
			if off == 0 {
				desc = 0x10
			}
			out = append(out, testPkt{seq: seq, ts: ts0 + uint32(k)*3000, marker: end == len(f), data: append([]byte{desc}, f[off:end]...)})
			seq++
		}
	}
	return out
}

func (p testPkt) buf(t testing.TB) *pktBuf {
	raw, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: p.seq, Timestamp: p.ts, Marker: p.marker}, Payload: p.data}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	b := new(pktBuf)
	b.n = copy(b.b[:], raw)
	return b
}

type frameSink struct {
	ts       []uint32
	frames   [][]byte
	released int
}

func (s *frameSink) assembler() *frameAssembler {
	return newFrameAssembler(vp8Payload{}, func(ts uint32, f []byte) {
		s.ts = append(s.ts, ts)
		s.frames = append(s.frames, slices.Clone(f))
	}, func(*pktBuf) { s.released++ })
}

func TestVP8Frames(t *testing.T) {
	frames := [][]byte{testFrame(0, 3000), testFrame(1, 100), testFrame(2, 2500), testFrame(3, 1200), testFrame(4, 50)}
	pkts := packetize(65530, 1000, frames, 1000) // the sequence numbers wrap
	// pkts: frame 0 is 0-2, 1 is 3, 2 is 4-6, 3 is 7-8, 4 is 9.
	drop := func(idx ...int) []testPkt {
		var out []testPkt
		for i, p := range pkts {
			if !slices.Contains(idx, i) {
				out = append(out, p)
			}
		}
		return out
	}
	swap := func(ps []testPkt, i, j int) []testPkt {
		ps = slices.Clone(ps)
		ps[i], ps[j] = ps[j], ps[i]
		return ps
	}
	padding := testPkt{seq: 0, ts: pkts[6].ts} // after frame 2, same timestamp
	withPadding := slices.Clone(pkts)
	for i := range withPadding[7:] {
		withPadding[7+i].seq++
	}
	padding.seq = pkts[6].seq + 1
	withPadding = slices.Insert(withPadding, 7, padding)
	noMarker := slices.Clone(pkts)
	noMarker[3].marker = false // frame 1 ends only by the next timestamp

	tests := []struct {
		name string
		in   []testPkt
		want []int // frames expected, in order
	}{
		{"in order", pkts, []int{0, 1, 2, 3, 4}},
		{"reordered within a frame", swap(pkts, 0, 2), []int{0, 1, 2, 3, 4}},
		{"reordered across frames", swap(pkts, 3, 5), []int{0, 1, 2, 3, 4}},
		{"a middle packet lost", drop(1), []int{1, 2, 3, 4}},
		{"a first packet lost", drop(4), []int{0, 1, 3, 4}},
		{"a marker packet lost", drop(6), []int{0, 1, 3, 4}},
		{"a one-packet frame lost", drop(3), []int{0, 2, 3, 4}},
		{"duplicates", slices.Insert(slices.Clone(pkts), 3, pkts[1], pkts[2]), []int{0, 1, 2, 3, 4}},
		{"a late duplicate", append(slices.Clone(pkts), pkts[2]), []int{0, 1, 2, 3, 4}},
		{"padding", withPadding, []int{0, 1, 2, 3, 4}},
		{"no marker", noMarker, []int{0, 1, 2, 3, 4}},
		{"starts mid-frame", pkts[1:], []int{1, 2, 3, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s frameSink
			a := s.assembler()
			for _, p := range tt.in {
				a.push(p.buf(t))
			}
			a.flush()
			var got []int
			for i, f := range s.frames {
				k := slices.IndexFunc(frames, func(g []byte) bool { return bytes.Equal(f, g) })
				if k < 0 {
					t.Fatalf("frame %d (%d bytes) is none of those sent", i, len(f))
				}
				if want := uint32(1000 + 3000*k); s.ts[i] != want {
					t.Errorf("frame %d: timestamp %d, want %d", k, s.ts[i], want)
				}
				got = append(got, k)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got frames %v, want %v", got, tt.want)
			}
			if s.released != len(tt.in) {
				t.Errorf("released %d packet buffers of %d", s.released, len(tt.in))
			}
		})
	}
}

// A packet that never comes is given up once frameWindow newer packets, or
// frameMaxDelay of newer RTP time, are held behind it.
func TestVP8FramesGiveUp(t *testing.T) {
	for _, tt := range []struct {
		name string
		size int // bytes per frame, 1000 per packet
	}{
		{"by count", 10_000}, // 10 packets a frame: 256 behind after 26 frames
		{"by time", 1_000},   // 1 packet a frame, 3000 ticks: 1 s after 30 frames
	} {
		t.Run(tt.name, func(t *testing.T) {
			const n = 60
			var frames [][]byte
			for i := range n {
				frames = append(frames, testFrame(i, tt.size))
			}
			pkts := packetize(100, 0, frames, 1000)
			lost := tt.size / 1000 // frame 1's first packet
			var s frameSink
			a := s.assembler()
			for i, p := range pkts {
				if i != lost {
					a.push(p.buf(t))
				}
			}
			// Before any flush: every frame but frame 1.
			if len(s.frames) != n-1 {
				t.Errorf("got %d frames, want %d", len(s.frames), n-1)
			}
			if a.held != 0 {
				t.Errorf("still holding %d packets", a.held)
			}
		})
	}
}

// FuzzVP8Frames pushes the input as a packet, then drops, repeats, swaps
// and forges the packets of known frames as the input says: nothing may
// panic or hold more than frameWindow packets, every packet buffer must come
// back, and without forged packets every frame out must be one that went
// in, whole and in order.
func FuzzVP8Frames(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{4, 4, 4, 0, 4, 4, 2, 4, 1, 4, 4, 4, 9, 4, 4})
	f.Add([]byte{0x80, 0x60, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x10, 0x9d, 3, 4, 4})
	f.Fuzz(func(t *testing.T, ops []byte) {
		var s0 frameSink
		a0 := s0.assembler()
		raw := new(pktBuf)
		raw.n = copy(raw.b[:], ops)
		a0.push(raw)
		a0.flush()
		if s0.released != 1 {
			t.Errorf("released %d packet buffers of 1", s0.released)
		}

		var frames [][]byte
		for i := range 40 {
			frames = append(frames, testFrame(i, 1+(i*577)%5000))
		}
		seq0 := uint16(len(ops)) * 1021
		pkts := packetize(seq0, 7, frames, 1200)
		var s frameSink
		a := s.assembler()
		pushed, forged := 0, false
		push := func(p testPkt) { pushed++; a.push(p.buf(t)) }
		i := 0
		for k, op := range ops {
			switch op % 8 {
			case 0: // lose one
				i++
			case 1: // repeat an earlier one
				if i > 0 {
					push(pkts[min(max(i-1-int(op/8), 0), len(pkts)-1)])
				}
			case 2: // swap two
				if i+1 < len(pkts) {
					push(pkts[i+1])
					push(pkts[i])
					i += 2
				}
			case 3: // forge one
				r := rand.New(rand.NewPCG(uint64(k), uint64(op)))
				data := make([]byte, r.IntN(40))
				for j := range data {
					data[j] = byte(r.Uint32())
				}
				push(testPkt{seq: seq0 + uint16(r.IntN(600)), ts: 7 + uint32(r.IntN(200000)), marker: r.IntN(2) == 0, data: data})
				forged = true
			default:
				if i < len(pkts) {
					push(pkts[i])
					i++
				}
			}
			if a.held > frameWindow {
				t.Fatalf("holding %d packets", a.held)
			}
		}
		for ; i < len(pkts); i++ {
			push(pkts[i])
		}
		a.flush()
		if s.released != pushed {
			t.Errorf("released %d packet buffers of %d", s.released, pushed)
		}
		if forged {
			return
		}
		last := -1
		for _, f := range s.frames {
			k := slices.IndexFunc(frames, func(g []byte) bool { return bytes.Equal(f, g) })
			if k < 0 {
				t.Fatalf("a frame of %d bytes that was not sent", len(f))
			}
			if k <= last {
				t.Errorf("frame %d after frame %d", k, last)
			}
			last = k
		}
	})
}
