package recorder_test

import (
	"testing"

	"supportgate/recorder"
	"supportgate/recorder/recordertest"
)

// The picture size IVF export writes comes from the SPS: sizes that are not
// whole macroblocks (cropping) and the high profile's extra fields
// (chroma format, bit depths) included.
func TestH264KeySize(t *testing.T) {
	for _, tc := range []struct {
		size, profile string
		w, h          int
	}{
		{"320x240", "baseline", 320, 240},
		{"1366x768", "main", 1366, 768},
		{"1920x1080", "high", 1920, 1080},
		{"854x480", "high", 854, 480},
	} {
		aus := recordertest.H264(t, tc.size, 5, 2, 5, tc.profile)
		w, h, ok := recorder.H264KeySize(aus[0])
		if !ok || w != tc.w || h != tc.h {
			t.Errorf("%s %s: got %dx%d %v, want %dx%d", tc.size, tc.profile, w, h, ok, tc.w, tc.h)
		}
		if _, _, ok := recorder.H264KeySize(aus[1]); ok {
			t.Errorf("%s: a size from a frame without an SPS", tc.size)
		}
	}
	for _, bad := range [][]byte{nil, {0, 0, 1}, {0, 0, 1, 0x67}, {0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f}, {0x67, 0x42}} {
		if w, h, ok := recorder.H264KeySize(bad); ok {
			t.Errorf("% x: got %dx%d", bad, w, h)
		}
	}
}

// FuzzH264KeySize reads any bytes as an access unit: no panic, and a size
// only within what a sequence parameter set can say.
func FuzzH264KeySize(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x0d, 0xda, 0x05, 0x07, 0xec, 0x04, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40, 0x00, 0x00, 0x0c, 0x83, 0xc5, 0x0a, 0xa8})
	f.Add([]byte{0, 0, 1, 0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x19, 0x60, 0, 0, 1, 0x65, 0x88})
	f.Fuzz(func(t *testing.T, au []byte) {
		w, h, ok := recorder.H264KeySize(au)
		if ok && (w <= 0 || h <= 0 || w > 16<<12 || h > 32<<12) {
			t.Fatalf("size %dx%d", w, h)
		}
	})
}
