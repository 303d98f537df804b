package review

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"filippo.io/age"

	"supportgate/recorder"
	"supportgate/recorder/recordertest"
	"supportgate/review/reviewtest"
)

// fixtures is a folder holding a shell recording, a screen-share
// recording, a tampered copy and a truncated copy of the shell recording.
type fixtures struct {
	dir        string
	keys       recordertest.Keys
	shell      reviewtest.Shell
	tamperedAt uint64 // the record the verifying reader names in the tampered copy
	screenN    int    // frames in the screen recording
}

const (
	shellID     = "sess-shell"
	screenID    = "sess-screen"
	tamperedID  = "sess-tampered"
	truncatedID = "sess-truncated"
)

func newFixtures(t testing.TB, withScreen bool) *fixtures {
	t.Helper()
	f := &fixtures{dir: t.TempDir(), keys: recordertest.NewKeys(t), shell: reviewtest.DefaultShell}
	shell := filepath.Join(f.dir, shellID+".sgrec")
	reviewtest.WriteShell(t, shell, shellID, f.keys, f.shell)
	if withScreen {
		frames := reviewtest.VP8(t, 4, 10)
		f.screenN = len(frames)
		reviewtest.WriteScreen(t, filepath.Join(f.dir, screenID+".sgrec"), screenID, f.keys, frames, 10)
	}
	b, err := os.ReadFile(shell)
	if err != nil {
		t.Fatal(err)
	}
	// Tampered: one flipped byte two thirds in; the reader names the record.
	bad := append([]byte(nil), b...)
	bad[len(bad)*2/3] ^= 0x40
	tp := filepath.Join(f.dir, tamperedID+".sgrec")
	if err := os.WriteFile(tp, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	_, rerr := recordertest.ReadAll(t, tp, f.keys.Identity)
	var te *recorder.TamperError
	if !errors.As(rerr, &te) {
		t.Fatalf("tampered fixture reads with %v, want a TamperError", rerr)
	}
	f.tamperedAt = te.Record
	// Truncated: the first 60%, as a crash would leave it.
	if err := os.WriteFile(filepath.Join(f.dir, truncatedID+".sgrec"), b[:len(b)*6/10], 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// serve starts a review server over src on a loopback port.
func serve(t testing.TB, src Source, ids ...age.Identity) *Server {
	t.Helper()
	return serveConfig(t, src, nil, ids...)
}

// serveConfig is serve with edit applied to the server's Config.
func serveConfig(t testing.TB, src Source, edit func(*Config), ids ...age.Identity) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(nil)
	cfg := Config{Source: src, Identities: ids, Host: ln.Addr().String(), EvidenceKey: key, Reviewer: "carol"}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler()}
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.Serve(ln)
	}()
	t.Cleanup(func() {
		hs.Close()
		<-done
		srv.Close()
	})
	return srv
}
