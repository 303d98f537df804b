package rtc

import (
	"bytes"
	"slices"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"supportgate/recorder/recordertest"
)

// annexB rejoins the NAL units of an Annex B access unit with 4-byte start
// codes, the form h264Payload writes.
func annexB(au []byte) []byte {
	var out []byte
	for _, nal := range bytes.Split(au, []byte{0, 0, 1}) {
		nal = bytes.TrimRight(nal, "\x00")
		if len(nal) > 0 {
			out = append(append(out, 0, 0, 0, 1), nal...)
		}
	}
	return out
}

// h264Packets packetizes access units as pion (like a browser) does, in
// packetization mode 1 with STAP-A and FU-A, one RTP timestamp per unit
// and the marker on each unit's last packet.
func h264Packets(aus [][]byte, seq0 uint16, mtu uint16) []testPkt {
	var p codecs.H264Payloader
	var out []testPkt
	seq := seq0
	for k, au := range aus {
		payloads := p.Payload(mtu, au)
		for i, pl := range payloads {
			out = append(out, testPkt{seq: seq, ts: uint32(k) * 3000, marker: i == len(payloads)-1, data: pl})
			seq++
		}
	}
	return out
}

func TestH264Frames(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra []string
	}{
		// A low quantizer makes every picture span several packets.
		{"one slice", []string{"-qp", "8"}},
		{"four slices", []string{"-qp", "8", "-x264-params", "slices=4"}}, // packets that start a slice but not the frame
	} {
		t.Run(tc.name, func(t *testing.T) {
			aus := recordertest.H264(t, "640x360", 30, 20, 10, "baseline", tc.extra...)
			pkts := h264Packets(aus, 65500, 1200)
			assemble := func(pkts []testPkt) (*frameSink, []bool) {
				var s frameSink
				var keys []bool
				a := newFrameAssembler(h264Payload{}, func(ts uint32, f []byte) {
					s.ts = append(s.ts, ts)
					s.frames = append(s.frames, slices.Clone(f))
					keys = append(keys, h264Payload{}.key(f))
				}, func(*pktBuf) { s.released++ })
				for _, p := range pkts {
					a.push(p.buf(t))
				}
				a.flush()
				if s.released != len(pkts) {
					t.Errorf("released %d packet buffers of %d", s.released, len(pkts))
				}
				return &s, keys
			}

			s, keys := assemble(pkts)
			if len(s.frames) != len(aus) {
				t.Fatalf("got %d frames, want %d", len(s.frames), len(aus))
			}
			for i, au := range aus {
				if !bytes.Equal(s.frames[i], annexB(au)) {
					t.Errorf("frame %d differs from the access unit sent (%d bytes, want %d)", i, len(s.frames[i]), len(annexB(au)))
				}
				if keys[i] != (i%10 == 0) {
					t.Errorf("frame %d: key %v", i, keys[i])
				}
			}

			// A lost fragment drops its frame only; reordering changes nothing.
			lost := -1
			for i := 1; i+1 < len(pkts); i++ {
				if p := pkts[i]; p.ts != 0 && pkts[i-1].ts == p.ts && !p.marker {
					lost = i // neither the first nor the last packet of its frame
					break
				}
			}
			if lost < 0 {
				t.Fatal("no frame after the first has three packets")
			}
			lostTS := pkts[lost].ts
			mixed := slices.Delete(slices.Clone(pkts), lost, lost+1)
			for i := 3; i+1 < len(mixed); i += 7 {
				mixed[i], mixed[i+1] = mixed[i+1], mixed[i]
			}
			s, _ = assemble(mixed)
			if len(s.frames) != len(aus)-1 || slices.Contains(s.ts, lostTS) {
				t.Errorf("with the frame at %d broken: got %d frames (timestamps %v), want %d without it", lostTS, len(s.frames), s.ts, len(aus)-1)
			}

			// A frame whose first packet is lost is dropped: the packet
			// after it does not start a frame, even when it starts a slice.
			// (Losing a key frame's parameter sets, which come first, leaves
			// a frame that starts with its first slice, as pictures do.)
			first := -1
			for i := 1; i < len(pkts) && first < 0; i++ {
				if p := pkts[i]; p.ts != pkts[i-1].ts && p.data[0]&0x1f != nalSTAPA && !p.marker {
					first = i // begins a frame of two or more packets, with a slice
				}
			}
			if first < 0 {
				t.Fatal("no frame of two packets begins with a slice")
			}
			firstTS := pkts[first].ts
			s, _ = assemble(slices.Delete(slices.Clone(pkts), first, first+1))
			if len(s.frames) != len(aus)-1 || slices.Contains(s.ts, firstTS) {
				t.Errorf("without the first packet of the frame at %d: got %d frames (timestamps %v), want %d without it", firstTS, len(s.frames), s.ts, len(aus)-1)
			}
		})
	}
}

func TestH264Parse(t *testing.T) {
	for _, tc := range []struct {
		name      string
		payload   []byte
		ok, start bool
	}{
		{"IDR slice, first", []byte{0x65, 0x88, 0x84}, true, true},
		{"slice, not first", []byte{0x41, 0x3f, 0x00}, true, false},
		{"SPS", []byte{0x67, 0x42, 0xc0, 0x1f}, true, true},
		{"STAP-A of SPS and PPS", []byte{0x18, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce}, true, true},
		{"STAP-A, size past the end", []byte{0x18, 0, 9, 0x67, 0x42}, false, false},
		{"STAP-A, empty unit", []byte{0x18, 0, 0}, false, false},
		{"STAP-A, nothing", []byte{0x18}, false, false},
		{"FU-A start of an IDR", []byte{0x7c, 0x85, 0x88, 0x80}, true, true},
		{"FU-A middle", []byte{0x7c, 0x05, 0x12}, true, false},
		{"FU-A start and end", []byte{0x7c, 0xc5, 0x88}, false, false},
		{"FU-A too short", []byte{0x7c, 0x85}, false, false},
		{"FU-A of a STAP-A", []byte{0x7c, 0x98, 0x00}, false, false},
		{"STAP-B", []byte{0x19, 0, 0, 0, 2, 0x67, 0x42}, false, false},
		{"forbidden bit", []byte{0xe5, 0x88}, false, false},
		{"empty", nil, false, false},
	} {
		_, start, ok := h264Payload{}.parse(tc.payload)
		if ok != tc.ok || start != tc.start {
			t.Errorf("%s: ok %v start %v, want %v %v", tc.name, ok, start, tc.ok, tc.start)
		}
	}
}

// FuzzH264Frames reads the input as RTP payloads, each after a 2-byte
// big-endian length, and pushes them as consecutive packets (the marker on
// every third) through an H.264 assembler: no panic, every packet buffer
// released, and each frame it emits starts with a start code. The seeds in
// testdata are libx264 access units packetized by pion.
func FuzzH264Frames(f *testing.F) {
	f.Add([]byte{0, 9, 0x18, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce, 0, 4, 0x7c, 0x85, 0x88, 0x80, 0, 3, 0x7c, 0x45, 0x12})
	f.Add([]byte{0, 3, 0x65, 0x88, 0x84, 0, 2, 0x41, 0x9a, 0, 2, 0x41, 0x3f})
	f.Fuzz(func(t *testing.T, in []byte) {
		released, pushed := 0, 0
		a := newFrameAssembler(h264Payload{}, func(_ uint32, frame []byte) {
			if !bytes.HasPrefix(frame, []byte{0, 0, 0, 1}) {
				t.Fatalf("frame % x", frame[:min(len(frame), 8)])
			}
			h264Payload{}.key(frame)
		}, func(*pktBuf) { released++ })
		for i := 0; len(in) >= 2; i++ {
			n := min(int(in[0])<<8|int(in[1]), len(in)-2)
			payload := in[2 : 2+n]
			in = in[2+n:]
			raw, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 102, SequenceNumber: uint16(i), Timestamp: uint32(i/3) * 3000, Marker: i%3 == 2}, Payload: payload}).Marshal()
			if err != nil || len(raw) > receiveMTU {
				continue
			}
			b := new(pktBuf)
			b.n = copy(b.b[:], raw)
			pushed++
			a.push(b)
		}
		a.flush()
		if released != pushed {
			t.Fatalf("released %d of %d", released, pushed)
		}
	})
}
