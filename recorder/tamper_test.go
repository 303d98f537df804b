package recorder_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/zeebo/blake3"

	"supportgate/recorder"
	"supportgate/recorder/recordertest"
)

// frameSpan is one frame of a recording file, parsed the way FORMAT.md
// describes it.
type frameSpan struct {
	off, end int64
	seq      uint64
	kind     byte
}

func parseFile(t *testing.T, b []byte) (hdrLen int64, frames []frameSpan) {
	t.Helper()
	i := bytes.Index(b, []byte("\nsignature: "))
	j := bytes.Index(b[i+1:], []byte("\n\n"))
	if i < 0 || j < 0 {
		t.Fatal("no header")
	}
	hdrLen = int64(i + 1 + j + 2)
	for off := hdrLen; off+4 <= int64(len(b)); {
		l := int64(binary.BigEndian.Uint32(b[off:]))
		if string(b[off:off+8]) == "SGRECEND" {
			break
		}
		frames = append(frames, frameSpan{off, off + 4 + l, binary.BigEndian.Uint64(b[off+4:]), b[off+20]})
		off += 4 + l
	}
	return hdrLen, frames
}

// rechain recomputes every chain value of a version 2 recording, as an
// insider without the signing key would after editing a frame:
// h(0) = BLAKE3(context || header), h(n) = BLAKE3(frame n without its
// chain value || h(n-1)).
func rechain(b []byte, hdrLen int64, frames []frameSpan) {
	prev := blake3.Sum256(append([]byte("supportgate-recording-v2 chain\x00"), b[:hdrLen]...))
	for _, f := range frames {
		prev = blake3.Sum256(append(bytes.Clone(b[f.off:f.end-32]), prev[:]...))
		copy(b[f.end-32:f.end], prev[:])
	}
}

func firstSealedAfter(frames []frameSpan, i int) int {
	for ; frames[i].kind != 1; i++ {
	}
	return i
}

func nextSigned(frames []frameSpan, i int) uint64 {
	for ; frames[i].kind == 1; i++ {
	}
	return frames[i].seq
}

func TestTamperMatrix(t *testing.T) {
	k := recordertest.NewKeys(t)
	orig, err := os.ReadFile(writeSample(t, k, nil))
	if err != nil {
		t.Fatal(err)
	}
	other, err := os.ReadFile(writeSample(t, k, func(c *recorder.WriterConfig) { c.RecordingID = "rec-2" }))
	if err != nil {
		t.Fatal(err)
	}
	hdrLen, frames := parseFile(t, orig)
	_, otherFrames := parseFile(t, other)
	ki := firstSealedAfter(frames, 12)
	kf := frames[ki]
	cut := func(b []byte, f frameSpan) []byte { return b[f.off:f.end] }
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

	tests := []struct {
		name      string
		edit      func() []byte
		verifyRec uint64 // record Verify names (no key)
		readRec   uint64 // record Reader names (with key)
		cutShort  bool
	}{
		{"flip ciphertext byte", func() []byte {
			b := bytes.Clone(orig)
			b[kf.off+30] ^= 0x01
			return b
		}, kf.seq, kf.seq, false},
		{"flip time byte", func() []byte {
			b := bytes.Clone(orig)
			b[kf.off+19] ^= 0x01
			return b
		}, kf.seq, kf.seq, false},
		{"flip chain byte", func() []byte {
			b := bytes.Clone(orig)
			b[kf.end-1] ^= 0x80
			return b
		}, kf.seq, kf.seq, false},
		{"drop record", func() []byte {
			return join(orig[:kf.off], orig[kf.end:])
		}, kf.seq, kf.seq, false},
		{"reorder records", func() []byte {
			n := frames[ki+1]
			return join(orig[:kf.off], cut(orig, n), cut(orig, kf), orig[n.end:])
		}, kf.seq, kf.seq, false},
		{"splice from another recording", func() []byte {
			return join(orig[:kf.off], cut(other, otherFrames[ki]), orig[kf.end:])
		}, kf.seq, kf.seq, false},
		{"splice and recompute chain", func() []byte {
			b := join(orig[:kf.off], cut(other, otherFrames[ki]), orig[kf.end:])
			_, fr := parseFile(t, b)
			rechain(b, hdrLen, fr)
			return b
		}, nextSigned(frames, ki), kf.seq, false},
		{"edit and recompute chain", func() []byte {
			b := bytes.Clone(orig)
			b[kf.off+30] ^= 0x01
			rechain(b, hdrLen, frames)
			return b
		}, nextSigned(frames, ki), kf.seq, false},
		{"flip checkpoint signature", func() []byte {
			b := bytes.Clone(orig)
			s := frames[nextSigned(frames, ki)-1]
			b[s.end-40] ^= 0x01
			rechain(b, hdrLen, frames)
			return b
		}, nextSigned(frames, ki), nextSigned(frames, ki), false},
		{"edit header", func() []byte {
			return bytes.Replace(orig, []byte("session-id: sess-1"), []byte("session-id: sess-2"), 1)
		}, 0, 0, false},
		{"truncate at a record boundary", func() []byte {
			return orig[:kf.off]
		}, kf.seq - 1, kf.seq - 1, true},
		{"truncate inside a record", func() []byte {
			return orig[:kf.off+10]
		}, kf.seq - 1, kf.seq - 1, true},
		{"drop end record", func() []byte {
			return orig[:frames[len(frames)-1].off]
		}, frames[len(frames)-1].seq - 1, frames[len(frames)-1].seq - 1, true},
		{"append data", func() []byte {
			return join(orig, []byte("junk"))
		}, frames[len(frames)-1].seq + 1, frames[len(frames)-1].seq + 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.edit()
			_, verr := recorder.Verify(bytes.NewReader(b), int64(len(b)))
			checkErr(t, "verify", verr, tt.verifyRec, tt.cutShort)
			rerr := readAllErr(t, b, k)
			checkErr(t, "read", rerr, tt.readRec, tt.cutShort)
		})
	}
}

func readAllErr(t *testing.T, b []byte, k recordertest.Keys) error {
	r, err := recorder.Open(bytes.NewReader(b), int64(len(b)), k.Identity)
	if err != nil {
		return err
	}
	for {
		if _, err := r.Next(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func checkErr(t *testing.T, what string, err error, rec uint64, cutShort bool) {
	t.Helper()
	if cutShort {
		var ce *recorder.CutShortError
		if !errors.As(err, &ce) {
			t.Fatalf("%s: got %v, want cut short", what, err)
		}
		if ce.Records != rec {
			t.Errorf("%s: cut short after record %d, want %d", what, ce.Records, rec)
		}
		return
	}
	var te *recorder.TamperError
	if !errors.As(err, &te) {
		t.Fatalf("%s: got %v, want a TamperError", what, err)
	}
	if te.Record != rec {
		t.Errorf("%s: named record %d, want %d (%v)", what, te.Record, rec, err)
	}
}

func TestVerifyIntact(t *testing.T) {
	k := recordertest.NewKeys(t)
	path := writeSample(t, k, nil)
	rep, err := recorder.VerifyFile(path)
	if err != nil || !rep.Complete {
		t.Fatalf("got %v complete=%v, want intact", err, rep.Complete)
	}
	if _, err := recorder.VerifyFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file verified")
	}
}
