package recordertest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"supportgate/internal/realpeer"
)

// H264 returns frames access units of ffmpeg's test pattern at size
// ("320x240") and fps, encoded by libx264 with profile ("baseline",
// "main", "high") in Annex B form, one per frame, as ffprobe splits them.
// The first carries the SPS and PPS and is an IDR picture; so is every
// gop-th after it. extra are more ffmpeg output options. It skips (fails
// under CI) without ffmpeg and ffprobe.
func H264(t testing.TB, size string, fps, frames, gop int, profile string, extra ...string) [][]byte {
	t.Helper()
	ffmpeg := realpeer.Require(t, "ffmpeg")
	ffprobe := realpeer.Require(t, "ffprobe")
	file := filepath.Join(t.TempDir(), "video.h264")
	args := []string{"-v", "error", "-f", "lavfi", "-i", "testsrc=size=" + size + ":rate=" + strconv.Itoa(fps),
		"-frames:v", strconv.Itoa(frames), "-pix_fmt", "yuv420p", "-c:v", "libx264", "-profile:v", profile,
		"-g", strconv.Itoa(gop), "-bf", "0", "-bsf:v", "h264_mp4toannexb"}
	args = append(append(args, extra...), "-f", "h264", file)
	gen := exec.Command(ffmpeg, args...)
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("generating H.264: %v\n%s", err, out)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	probe := exec.Command(ffprobe, "-v", "error", "-show_packets", "-show_entries", "packet=pos,size", "-of", "csv=p=0", file)
	var stderr bytes.Buffer
	probe.Stderr = &stderr
	out, err := probe.Output()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, stderr.String())
	}
	var aus [][]byte
	for line := range strings.Lines(string(out)) {
		// csv=p=0 prints the entries in ffprobe's order: size,pos.
		f := strings.Split(strings.TrimSpace(line), ",")
		if len(f) != 2 {
			continue
		}
		n, err1 := strconv.Atoi(f[0])
		pos, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil || pos < 0 || pos+n > len(data) {
			t.Fatalf("ffprobe packet %q", line)
		}
		aus = append(aus, data[pos:pos+n])
	}
	if len(aus) != frames {
		t.Fatalf("ffprobe found %d access units, want %d", len(aus), frames)
	}
	return aus
}

// HasIDR reports whether the Annex B access unit au holds an IDR slice
// (NAL unit type 5).
func HasIDR(au []byte) bool {
	for i := 0; i+3 < len(au); i++ {
		if au[i] == 0 && au[i+1] == 0 && au[i+2] == 1 && au[i+3]&0x1f == 5 {
			return true
		}
	}
	return false
}

// FrameMD5s decodes a video file with ffmpeg and returns the MD5 of each
// picture, in order; any message from the decoder fails t. It skips (fails
// under CI) without ffmpeg.
func FrameMD5s(t testing.TB, file string) []string {
	t.Helper()
	ffmpeg := realpeer.Require(t, "ffmpeg")
	cmd := exec.Command(ffmpeg, "-v", "error", "-i", file, "-f", "framemd5", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffmpeg decoding %s: %v\n%s", filepath.Base(file), err, stderr.String())
	}
	var sums []string
	for line := range strings.Lines(string(out)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			f := strings.Split(line, ",")
			sums = append(sums, strings.TrimSpace(f[len(f)-1]))
		}
	}
	return sums
}
