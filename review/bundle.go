package review

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"supportgate/recorder"
)

// An evidence bundle is a zip file:
//
//	manifest.json      what the bundle holds: every other file with its size and SHA-256
//	manifest.sig       base64 Ed25519 signature of manifest.json by the reviewer's key
//	recording/ID.sgrec the recording, byte for byte as the source holds it (still encrypted)
//	verification.json  what verifying it found
//	audit.json         the gateway's audit-log slice for the session (gateway sources)
//	README.txt         how to check all of it
//
// VerifyBundle checks one.

// BundleFormat names the bundle layout in its manifest.
const BundleFormat = "supportgate-evidence/1"

// Manifest is manifest.json.
type Manifest struct {
	Format      string         `json:"format"`
	SessionID   string         `json:"session_id"`
	RecordingID string         `json:"recording_id"`
	CreatedAt   time.Time      `json:"created_at"`
	Reviewer    string         `json:"reviewer"`
	Source      string         `json:"source"`
	Files       []ManifestFile `json:"files"`
	Audit       string         `json:"audit"`      // "included", or why not
	PublicKey   string         `json:"public_key"` // base64 Ed25519 key that signed manifest.sig
}

// ManifestFile is one file of a bundle.
type ManifestFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Verification is verification.json.
type Verification struct {
	Status            Status    `json:"status"`
	Problem           string    `json:"problem,omitempty"`
	TamperedAt        uint64    `json:"tampered_at,omitempty"`
	RecordingID       string    `json:"recording_id"`
	SessionID         string    `json:"session_id"`
	Start             time.Time `json:"start"`
	DurationMS        int64     `json:"duration_ms"`
	Records           uint64    `json:"records"`
	Checkpoints       int       `json:"checkpoints"`
	SignedThrough     uint64    `json:"signed_through"`
	Complete          bool      `json:"complete"`
	Redactions        int       `json:"redactions"`
	SignerKey         string    `json:"signer_key"` // base64 Ed25519 gateway signing key
	SignerFingerprint string    `json:"signer_fingerprint"`
	VerifiedAt        time.Time `json:"verified_at"`
	Method            string    `json:"method"`
}

// maxBundleRecording caps the recording a bundle carries.
const maxBundleRecording = 4 << 30

// writeBundle writes the evidence bundle of recording id to w. Before the
// first byte is written it calls note with the manifest's SHA-256, so a
// source that must audit the export can refuse it.
func (s *Server) writeBundle(ctx context.Context, w io.Writer, id string, note func(manifestSHA256 string) error) error {
	f, err := s.cfg.Source.Open(ctx, id)
	if err != nil {
		return err
	}
	defer f.Close()
	if f.Size() > maxBundleRecording {
		return fmt.Errorf("recording is larger than %d bytes", int64(maxBundleRecording))
	}
	ver, err := s.verification(ctx, f, id)
	if err != nil {
		return err
	}
	recName := "recording/" + id + ".sgrec"
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, f.Size())); err != nil {
		return fmt.Errorf("hashing the recording: %w", err)
	}
	m := Manifest{
		Format: BundleFormat, SessionID: ver.SessionID, RecordingID: ver.RecordingID,
		CreatedAt: s.now().UTC(), Reviewer: s.cfg.Reviewer, Source: s.cfg.Source.Name(), Audit: "included",
		PublicKey: base64.StdEncoding.EncodeToString(s.cfg.EvidenceKey.Public().(ed25519.PublicKey)),
		Files:     []ManifestFile{{Name: recName, Size: f.Size(), SHA256: hex.EncodeToString(h.Sum(nil))}},
	}
	vb, _ := json.MarshalIndent(ver, "", "  ")
	files := []bundleFile{{"verification.json", append(vb, '\n')}}
	switch ev, err := s.cfg.Source.Evidence(ctx, id); {
	case errors.Is(err, ErrNoEvidence):
		m.Audit = "not available: the recordings came from a folder, not from the gateway"
	case err != nil:
		return fmt.Errorf("fetching the audit-log slice: %w", err)
	default:
		files = append(files, bundleFile{"audit.json", append(bytes.TrimSpace(ev), '\n')})
	}
	files = append(files, bundleFile{"README.txt", []byte(bundleReadme)})
	for _, fl := range files {
		sum := sha256.Sum256(fl.b)
		m.Files = append(m.Files, ManifestFile{Name: fl.name, Size: int64(len(fl.b)), SHA256: hex.EncodeToString(sum[:])})
	}
	mb, _ := json.MarshalIndent(m, "", "  ")
	mb = append(mb, '\n')
	msum := sha256.Sum256(mb)
	if err := note(hex.EncodeToString(msum[:])); err != nil {
		return err
	}
	sig := ed25519.Sign(s.cfg.EvidenceKey, mb)

	zw := zip.NewWriter(w)
	if err := zipFile(zw, "manifest.json", mb, m.CreatedAt); err != nil {
		return err
	}
	if err := zipFile(zw, "manifest.sig", []byte(base64.StdEncoding.EncodeToString(sig)+"\n"), m.CreatedAt); err != nil {
		return err
	}
	fw, err := zw.CreateHeader(&zip.FileHeader{Name: recName, Method: zip.Store, Modified: m.CreatedAt})
	if err != nil {
		return err
	}
	if _, err := io.Copy(fw, io.NewSectionReader(f, 0, f.Size())); err != nil {
		return fmt.Errorf("copying the recording: %w", err)
	}
	for _, fl := range files {
		if err := zipFile(zw, fl.name, fl.b, m.CreatedAt); err != nil {
			return err
		}
	}
	return zw.Close()
}

type bundleFile struct {
	name string
	b    []byte
}

func zipFile(zw *zip.Writer, name string, b []byte, mod time.Time) error {
	fw, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: mod})
	if err != nil {
		return err
	}
	_, err = fw.Write(b)
	return err
}

// verification verifies the recording twice: without the key, as anyone
// holding the bundle can, and with it, which names an edited record
// itself rather than the checkpoint after it.
func (s *Server) verification(ctx context.Context, f File, id string) (*Verification, error) {
	rep, kerr := recorder.Verify(f, f.Size())
	v := &Verification{
		RecordingID: rep.RecordingID, SessionID: rep.SessionID, Start: rep.Start,
		DurationMS: rep.Duration.Milliseconds(), Records: rep.Records, Checkpoints: rep.Checkpoints,
		SignedThrough: rep.Signed, Complete: rep.Complete, Redactions: rep.Stats.Redactions,
		SignerKey:         base64.StdEncoding.EncodeToString(rep.Signer),
		SignerFingerprint: rep.SignerFingerprint(), VerifiedAt: s.now().UTC(),
		Method: "hash chain, checkpoint and end signatures without the key; AEAD of every record with the reviewer's identity",
		Status: StatusVerified,
	}
	r, err := recorder.Open(f, f.Size(), s.cfg.Identities...)
	if err != nil {
		return nil, fmt.Errorf("%s", damage(err))
	}
	sum := scan(ctx, r, nil) // the bundle needs the status, not the search text
	if sum.Status != StatusVerified {
		v.Status, v.Problem, v.TamperedAt = sum.Status, sum.Problem, sum.TamperedAt
	} else if kerr != nil {
		v.Status, v.Problem = StatusTampered, damage(kerr)
		var te *recorder.TamperError
		if errors.As(kerr, &te) {
			v.TamperedAt = te.Record
		}
	}
	return v, nil
}

const bundleReadme = `supportgate evidence bundle

manifest.json lists every other file of this bundle with its size and SHA-256;
manifest.sig is the base64 Ed25519 signature of manifest.json by the key in its
"public_key" field (the reviewer's evidence key). Check the whole bundle with:

    supportgate verify BUNDLE.zip

which checks the signature, every file's hash, the recording's hash chain and
gateway signatures (no decryption key needed), and the audit-log slice's chain
and checkpoint signature when audit.json is present.

recording/*.sgrec is the session recording exactly as the gateway wrote it, still
encrypted to the compliance recipients. verification.json is what the reviewer's
player found when it made this bundle. audit.json is the gateway's audit-log slice
for the session with what is needed to check its hash chain.
`
