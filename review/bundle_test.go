package review

import (
	"archive/zip"
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
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

// rezip rewrites a bundle with edit applied to the named file's bytes.
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
		fw, _ := zw.Create(f.Name)
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
	base := "http://" + srv.cfg.Host
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
	base := "http://" + srv.cfg.Host

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
	base := "http://" + srv.cfg.Host
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
