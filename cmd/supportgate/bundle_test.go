package main

import (
	"archive/zip"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"supportgate/review"
)

// bundleFile is one file of a hand-made evidence bundle.
type bundleFile struct {
	name   string
	data   []byte
	listed bool // in the manifest
}

// writeTestBundle writes an evidence bundle holding files, its manifest
// (edited by edit) signed by a fresh key, as review.VerifyBundle expects.
func writeTestBundle(t *testing.T, sessionID string, files []bundleFile, edit func(*review.Manifest)) string {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	m := review.Manifest{
		Format:    review.BundleFormat,
		SessionID: sessionID,
		CreatedAt: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC),
		Reviewer:  "carol",
		Audit:     "not included: folder source",
		PublicKey: base64.StdEncoding.EncodeToString(pub),
	}
	for _, f := range files {
		if f.listed {
			sum := sha256.Sum256(f.data)
			m.Files = append(m.Files, review.ManifestFile{Name: f.name, Size: int64(len(f.data)), SHA256: hex.EncodeToString(sum[:])})
		}
	}
	if edit != nil {
		edit(&m)
	}
	mb, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	sig := base64.StdEncoding.EncodeToString(ed25519.Sign(priv, mb))
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	all := append([]bundleFile{{name: "manifest.json", data: mb}, {name: "manifest.sig", data: []byte(sig)}}, files...)
	for _, f := range all {
		// A recording is stored uncompressed, as the player writes it
		// and VerifyBundle requires.
		method := zip.Deflate
		if strings.HasPrefix(f.name, "recording/") {
			method = zip.Store
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(f.data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bundle.zip")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestVerifyBundleEscapes checks that nothing from a bundle, whose
// manifest anyone can sign, reaches the terminal as a control: a field
// that hides the lines after it (SGR 8) or forges a line of its own.
func TestVerifyBundleEscapes(t *testing.T) {
	recPath, _, _ := writeCLISample(t)
	rec, err := os.ReadFile(recPath)
	if err != nil {
		t.Fatal(err)
	}
	const forged = "\nsigner:     FORGED (fingerprint 00112233445566778899aabbccddeeff)\nstatus:     intact and complete\x1b[8m"
	evil := func(m *review.Manifest) {
		m.Reviewer = "carol" + forged
		m.Audit = "included\x1b]0;title\x07\xc2\x9b2J" + forged
		// base64 decoding skips CR and LF, so the key still verifies.
		m.PublicKey = m.PublicKey[:10] + "\r\n" + m.PublicKey[10:]
	}
	tests := []struct {
		name       string
		files      []bundleFile
		edit       func(*review.Manifest)
		code       int
		wantStdout string
	}{
		{"manifest fields", []bundleFile{{"recording/rec-1.sgrec", rec, true}}, evil, 0, `by "carol\nsigner:`},
		{"entry name", []bundleFile{{"recording/rec-1.sgrec", rec, true}, {"x" + forged, []byte("x"), false}}, nil, 1, `TAMPERED: "evidence bundle does not verify: x\nsigner:`},
		{"listed entry name", []bundleFile{{"recording/rec-1.sgrec", rec, true}, {"y" + forged, []byte("y"), true}}, evil, 0, `audit:      "included\x1b]0;title`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTestBundle(t, "sess-1", tt.files, tt.edit)
			code, stdout, stderr := runTestCLI(t, "verify", path)
			if code != tt.code {
				t.Errorf("exit code: got %d, want %d (stderr %q)", code, tt.code, stderr)
			}
			if !strings.Contains(stdout, tt.wantStdout) {
				t.Errorf("stdout: got %q, want it to contain %q", stdout, tt.wantStdout)
			}
			for _, out := range []string{stdout, stderr} {
				if i := strings.IndexFunc(out, func(r rune) bool { return r != '\n' && (r < 0x20 || r >= 0x7f && r <= 0x9f) }); i >= 0 {
					t.Errorf("control %q at %d survived in %q", out[i], i, out)
				}
				for _, line := range strings.Split(out, "\n") {
					if strings.HasPrefix(line, "signer:     FORGED") || strings.HasPrefix(line, "status:") {
						t.Errorf("forged line %q in %q", line, out)
					}
				}
			}
		})
	}
}

// TestVerifyBundleExitCodes checks the exit codes for what a bundle
// carries: only a recording cut short exits 2.
func TestVerifyBundleExitCodes(t *testing.T) {
	recPath, _, _ := writeCLISample(t)
	rec, err := os.ReadFile(recPath)
	if err != nil {
		t.Fatal(err)
	}
	offs := frameOffsets(t, rec)
	flipped := bytes.Clone(rec)
	flipped[offs[11]+25] ^= 1
	tests := []struct {
		name       string
		sessionID  string
		rec        []byte
		code       int
		wantStderr string
	}{
		{"intact", "sess-1", rec, 0, ""},
		{"tampered", "sess-1", flipped, 1, "its recording is tampered: record 12"},
		{"cut short", "sess-1", rec[:offs[20]], 2, "its recording is cut short after record 20"},
		{"not a recording", "", []byte("this is not a recording\n"), 1, "its recording does not verify: not a supportgate recording"},
		{"empty recording", "", nil, 1, "does not verify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTestBundle(t, tt.sessionID, []bundleFile{{"recording/x.sgrec", tt.rec, true}}, nil)
			code, stdout, stderr := runTestCLI(t, "verify", path)
			if code != tt.code {
				t.Errorf("exit code: got %d, want %d (stdout %q, stderr %q)", code, tt.code, stdout, stderr)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr: got %q, want it to contain %q", stderr, tt.wantStderr)
			}
		})
	}
}

func TestVerifyHelpExitCodes(t *testing.T) {
	code, stdout, _ := runTestCLI(t, "verify", "--help")
	if code != 0 {
		t.Errorf("exit code: got %d, want 0", code)
	}
	if n := strings.Count(stdout, "usage: supportgate verify"); n != 1 {
		t.Errorf("verify --help printed the usage %d times, want once", n)
	}
	for _, want := range []string{"0 intact and complete", "1 tampered", "2 intact but cut short", "3 usage error"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("verify --help: got %q, want it to contain %q", stdout, want)
		}
	}
}

func TestPrintable(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"carol", "carol"},
		{"Zoë Ångström, 東京 ✓", "Zoë Ångström, 東京 ✓"},
		{`C:\path "quoted"`, `C:\path "quoted"`},
		{"a\nb", `"a\nb"`},
		{"a\x1b[8mb", `"a\x1b[8mb"`},
		{"del\x7f", `"del\x7f"`},
		{"c1 \u009b2J", `"c1 \u009b2J"`},
		{"raw \x9b", `"raw \x9b"`},
		{"bidi \u202e", `"bidi \u202e"`},
		{"tab\t", `"tab\t"`},
	} {
		if got := printable(tt.in); got != tt.want {
			t.Errorf("printable(%q): got %s, want %s", tt.in, got, tt.want)
		}
	}
}
