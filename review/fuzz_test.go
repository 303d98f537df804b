package review

import (
	"bytes"
	"crypto/ed25519"
	"strings"
	"testing"
)

// FuzzVerifyBundle feeds VerifyBundle untrusted bytes, seeded with a real
// bundle: it must return an error or a report, never panic, and never
// accept a bundle whose manifest signature does not verify.
func FuzzVerifyBundle(f *testing.F) {
	fx := newFixtures(f, false)
	src, _ := NewFolder(fx.dir)
	srv := serve(f, src, fx.keys.Identity)
	var buf bytes.Buffer
	if err := srv.writeBundle(f.Context(), &buf, shellID, func(string) error { return nil }); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte("PK\x03\x04"))
	f.Add([]byte{})
	pub := srv.cfg.EvidenceKey.Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := VerifyBundle(bytes.NewReader(b), int64(len(b)), pub)
		if err == nil && (rep == nil || rep.Recording == nil) {
			t.Fatal("nil report without an error")
		}
	})
}

// FuzzTextExtractor: terminal output from the customer's machine is
// untrusted; search lines stay bounded and valid UTF-8.
func FuzzTextExtractor(f *testing.F) {
	f.Add([]byte("plain line\r\n\x1b[1;32mgreen\x1b[0m\x1b]0;title\x07\x08x\n"))
	f.Add([]byte("\x1bP unterminated dcs \x1b\\ after"))
	f.Fuzz(func(t *testing.T, p []byte) {
		var x textExtractor
		lines := x.write(0, p)
		if l, ok := x.flush(0); ok {
			lines = append(lines, l)
		}
		for _, l := range lines {
			if len(l.text) > maxLineLen*3 {
				t.Fatalf("line of %d bytes", len(l.text))
			}
			if strings.ContainsRune(l.text, '\x1b') {
				t.Fatalf("escape left in %q", l.text)
			}
		}
	})
}
