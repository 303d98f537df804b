package review

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"supportgate/recorder"
	"supportgate/review/reviewtest"
)

func fetch(t *testing.T, c *http.Client, url string) ([]byte, *http.Response) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b, resp
}

// rezip rewrites a bundle, each file compressed or not as it was, with edit applied to the named file's bytes.
func rezip(t *testing.T, b []byte, name string, edit func([]byte) []byte) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, f := range zr.File {
		rc, _ := f.Open()
		data, _ := io.ReadAll(rc)
		rc.Close()
		if f.Name == name {
			data = edit(data)
		}
		fw, _ := zw.CreateHeader(&zip.FileHeader{Name: f.Name, Method: f.Method})
		fw.Write(data)
	}
	zw.Close()
	return out.Bytes()
}

func zipText(t *testing.T, b []byte, name string) string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := zr.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, _ := io.ReadAll(rc)
	return string(data)
}

func TestEvidenceBundle(t *testing.T) {
	f := newFixtures(t, false)
	src, _ := NewFolder(f.dir)
	srv := serve(t, src, f.keys.Identity)
	c := client(t, srv)
	base := apiBase(srv)
	waitVerified(t, c, base)

	b, resp := fetch(t, c, base+"/api/recordings/"+shellID+"/evidence.zip")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/zip" {
		t.Fatalf("evidence: %s %s", resp.Status, b)
	}
	pub := srv.cfg.EvidenceKey.Public().(ed25519.PublicKey)
	rep, err := VerifyBundle(bytes.NewReader(b), int64(len(b)), pub)
	if err != nil {
		t.Fatalf("VerifyBundle: %v", err)
	}
	if rep.RecordingErr != nil || !rep.Recording.Complete || rep.Manifest.SessionID != shellID || rep.Manifest.Reviewer != "carol" {
		t.Fatalf("report: %+v", rep)
	}
	if !strings.HasPrefix(rep.Manifest.Audit, "not available") {
		t.Errorf("a folder review claims an audit slice: %q", rep.Manifest.Audit)
	}

	// The tampered recording's bundle is intact, and says what the
	// recording is.
	tb, _ := fetch(t, c, base+"/api/recordings/"+tamperedID+"/evidence.zip")
	trep, err := VerifyBundle(bytes.NewReader(tb), int64(len(tb)), pub)
	if err != nil {
		t.Fatalf("tampered recording's bundle: %v", err)
	}
	if !errors.Is(trep.RecordingErr, recorder.ErrTampered) {
		t.Errorf("tampered recording verifies as %v", trep.RecordingErr)
	}
	if v := zipText(t, tb, "verification.json"); !strings.Contains(v, fmt.Sprintf(`"tampered_at": %d`, f.tamperedAt)) {
		t.Errorf("verification.json does not name record %d", f.tamperedAt)
	}

	// Every edit of the bundle is caught.
	flip := func(p []byte) []byte { q := append([]byte(nil), p...); q[len(q)/2] ^= 1; return q }
	for _, tt := range []struct{ name, file, want string }{
		{"recording byte", "recording/" + shellID + ".sgrec", "does not match its hash"},
		{"verification report", "verification.json", "does not match its hash"},
		{"manifest", "manifest.json", "not a valid signature"},
		{"signature", "manifest.sig", "not a valid signature"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bad := rezip(t, b, tt.file, flip)
			_, err := VerifyBundle(bytes.NewReader(bad), int64(len(bad)), nil)
			if !errors.Is(err, ErrBundle) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
	t.Run("untrusted signer", func(t *testing.T) {
		other, _, _ := ed25519.GenerateKey(nil)
		if _, err := VerifyBundle(bytes.NewReader(b), int64(len(b)), other); !errors.Is(err, ErrBundle) {
			t.Fatalf("got %v, want a bundle error", err)
		}
	})
}

func TestExports(t *testing.T) {
	f := newFixtures(t, false)
	src, _ := NewFolder(f.dir)
	srv := serve(t, src, f.keys.Identity)
	c := client(t, srv)
	base := apiBase(srv)

	b, resp := fetch(t, c, base+"/api/recordings/"+shellID+"/export?format=asciicast")
	if resp.StatusCode != 200 || !strings.Contains(strings.SplitN(string(b), "\n", 2)[0], `"version":2`) || !strings.Contains(string(b), f.shell.MiddleOutput) {
		t.Fatalf("asciicast: %s %.200s", resp.Status, b)
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, "attachment") {
		t.Errorf("Content-Disposition %q", cd)
	}
	if _, resp := fetch(t, c, base+"/api/recordings/"+shellID+"/export?format=exe"); resp.StatusCode != 400 {
		t.Errorf("unknown format: %s", resp.Status)
	}
}

// An H.264 screen share (from a browser without VP8) cannot be shown as
// WebM: the player's video request says so and points to the IVF export,
// which has it.
func TestH264ScreenShare(t *testing.T) {
	f := newFixtures(t, false)
	const id = "sess-h264"
	frames := reviewtest.H264(t, 2, 10)
	reviewtest.WriteScreen(t, filepath.Join(f.dir, id+".sgrec"), id, f.keys, frames, 10)
	src, _ := NewFolder(f.dir)
	srv := serve(t, src, f.keys.Identity)
	c := client(t, srv)
	base := apiBase(srv)
	waitVerified(t, c, base)

	var v struct {
		Video   bool `json:"video"`
		Summary struct {
			Video struct {
				Codec  string `json:"codec"`
				Frames int    `json:"frames"`
			} `json:"video"`
		} `json:"summary"`
	}
	getJSON(t, c, base+"/api/recordings/"+id, &v)
	if !v.Video || v.Summary.Video.Codec != "h264" || v.Summary.Video.Frames != len(frames) {
		t.Errorf("recording view: video %v, codec %q, %d frames; want h264 with %d", v.Video, v.Summary.Video.Codec, v.Summary.Video.Frames, len(frames))
	}
	b, resp := fetch(t, c, base+"/api/recordings/"+id+"/video.webm")
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(b), "H.264") || !strings.Contains(string(b), "IVF") {
		t.Errorf("video.webm: %s %s", resp.Status, b)
	}
	b, resp = fetch(t, c, base+"/api/recordings/"+id+"/export?format=ivf")
	if resp.StatusCode != 200 || len(b) < 32 || string(b[8:12]) != "H264" {
		t.Errorf("IVF export: %s, fourcc %q", resp.Status, b[8:min(12, len(b))])
	}
}

// bundleEntry is one file of a hand-made bundle: its bytes, or for raw
// its zip header and compressed bytes as they are.
type bundleEntry struct {
	name   string
	data   []byte
	method uint16
	raw    *zip.FileHeader
}

// signedBundle makes a bundle of session sessionID holding entries, every
// one listed in its manifest with the size and hash given (sha256 of data
// unless raw), signed by a fresh key.
func signedBundle(t *testing.T, sessionID string, entries []bundleEntry, sums map[string]string) []byte {
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(nil)
	m := Manifest{Format: BundleFormat, SessionID: sessionID, Reviewer: "carol", Audit: "not available",
		PublicKey: base64.StdEncoding.EncodeToString(pub)}
	for _, e := range entries {
		if e.raw != nil {
			m.Files = append(m.Files, ManifestFile{Name: e.name, Size: int64(e.raw.UncompressedSize64), SHA256: sums[e.name]})
			continue
		}
		sum := sha256.Sum256(e.data)
		m.Files = append(m.Files, ManifestFile{Name: e.name, Size: int64(len(e.data)), SHA256: hex.EncodeToString(sum[:])})
	}
	mb, _ := json.Marshal(m)
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, e := range append([]bundleEntry{
		{name: "manifest.json", data: mb, method: zip.Deflate},
		{name: "manifest.sig", data: []byte(base64.StdEncoding.EncodeToString(ed25519.Sign(priv, mb))), method: zip.Deflate},
	}, entries...) {
		var w io.Writer
		var err error
		if e.raw != nil {
			w, err = zw.CreateRaw(e.raw)
		} else {
			w, err = zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: e.method})
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// deflateZeros returns a deflate stream of n MiB of zeros, about a
// thousandth of that, made without compressing n MiB: the same
// non-final blocks of one MiB, repeated, and a final empty block.
func deflateZeros(t *testing.T, n int) []byte {
	t.Helper()
	var blk bytes.Buffer
	fw, _ := flate.NewWriter(&blk, flate.BestCompression)
	fw.Write(make([]byte, 1<<20))
	fw.Flush() // ends on a byte boundary, the stream still open
	var out bytes.Buffer
	for range n {
		out.Write(blk.Bytes())
	}
	out.Write([]byte{0x03, 0x00}) // a final, empty, fixed-Huffman block
	return out.Bytes()
}

// TestVerifyBundleBomb checks that a bundle whose recording is a deflate
// bomb, signed by any key with its true size and hash, is refused without
// inflating it into memory.
func TestVerifyBundleBomb(t *testing.T) {
	const mib = 64
	bomb := deflateZeros(t, mib)
	h, crc := sha256.New(), crc32.NewIEEE()
	zeros := make([]byte, 1<<20)
	for range mib {
		h.Write(zeros)
		crc.Write(zeros)
	}
	// The stream really inflates to that.
	if n, err := io.Copy(io.Discard, flate.NewReader(bytes.NewReader(bomb))); err != nil || n != mib<<20 {
		t.Fatalf("the bomb inflates to %d bytes (%v), want %d", n, err, mib<<20)
	}
	name := "recording/" + shellID + ".sgrec"
	b := signedBundle(t, shellID, []bundleEntry{{name: name, data: bomb, raw: &zip.FileHeader{
		Name: name, Method: zip.Deflate, CRC32: crc.Sum32(),
		CompressedSize64: uint64(len(bomb)), UncompressedSize64: mib << 20,
	}}}, map[string]string{name: hex.EncodeToString(h.Sum(nil))})
	t.Logf("a %d-byte bundle whose recording inflates to %d MiB", len(b), mib)

	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	_, err := VerifyBundle(bytes.NewReader(b), int64(len(b)), nil)
	runtime.ReadMemStats(&m1)
	alloc := m1.TotalAlloc - m0.TotalAlloc
	if !errors.Is(err, ErrBundle) || !strings.Contains(err.Error(), "compressed") {
		t.Errorf("got %v, want a bundle error for the compressed recording", err)
	}
	if alloc > 4<<20 {
		t.Errorf("verifying allocated %d bytes, want at most 4 MiB", alloc)
	}
}

// TestVerifyBundleOneRecording checks that a bundle carrying a second
// recording, which its verification would not cover, is refused: here a
// tampered copy listed before the intact one that used to be the only one
// verified.
func TestVerifyBundleOneRecording(t *testing.T) {
	f := newFixtures(t, false)
	read := func(id string) []byte {
		b, err := os.ReadFile(filepath.Join(f.dir, id+".sgrec"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tt := range []struct {
		name    string
		entries []bundleEntry
		want    string // in the error; "" for none
	}{
		{"one", []bundleEntry{{name: "recording/a.sgrec", data: read(shellID)}}, ""},
		{"two", []bundleEntry{
			{name: "recording/a.sgrec", data: read(tamperedID)},
			{name: "recording/b.sgrec", data: read(shellID)},
		}, "more than one recording"},
		{"another name", []bundleEntry{
			{name: "recording/a.sgrec", data: read(shellID)},
			{name: "recording/b.bin", data: read(tamperedID)},
		}, "not a recording"},
		{"compressed", []bundleEntry{{name: "recording/a.sgrec", data: read(shellID), method: zip.Deflate}}, "compressed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := signedBundle(t, shellID, tt.entries, nil)
			rep, err := VerifyBundle(bytes.NewReader(b), int64(len(b)), nil)
			if tt.want == "" {
				if err != nil || rep.RecordingErr != nil || !rep.Recording.Complete {
					t.Fatalf("got %v, recording %v; want an intact bundle", err, rep)
				}
				return
			}
			if !errors.Is(err, ErrBundle) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v (report %+v), want a bundle error with %q", err, rep, tt.want)
			}
		})
	}
}
