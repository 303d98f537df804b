package review

import (
	"archive/zip"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"supportgate/recorder"
)

// BundleReport is what VerifyBundle found.
type BundleReport struct {
	Manifest  Manifest
	Recording *recorder.Report // the recording's keyless verification
	// RecordingErr is the recording's damage, if any (a *TamperError, a
	// *CutShortError, or another error when it is not a recording at
	// all): the bundle is intact but what it carries is not.
	RecordingErr error
	AuditRecords int // records in the audit slice, 0 without one
}

// Limits on what VerifyBundle reads.
const (
	maxBundleFiles = 16
	maxSmallFile   = 64 << 20 // manifest, signature, verification, audit slice
)

// ErrBundle wraps every way a bundle can fail its own checks.
var ErrBundle = errors.New("evidence bundle does not verify")

func bundleErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBundle, fmt.Sprintf(format, args...))
}

// VerifyBundle checks an evidence bundle: the manifest's signature, that
// the zip holds exactly the files the manifest lists with their sizes and
// hashes, the recording's chain and gateway signatures (no key needed),
// and the audit slice's chain and checkpoint signature when present. If
// trusted is set, the manifest must be signed by that key.
func VerifyBundle(ra io.ReaderAt, size int64, trusted ed25519.PublicKey) (*BundleReport, error) {
	zr, err := zip.NewReader(ra, size)
	if err != nil {
		return nil, bundleErr("not a zip file: %v", err)
	}
	if len(zr.File) > maxBundleFiles {
		return nil, bundleErr("%d files, more than a bundle holds", len(zr.File))
	}
	byName := map[string]*zip.File{}
	for _, f := range zr.File {
		if _, dup := byName[f.Name]; dup {
			return nil, bundleErr("%s appears twice", f.Name)
		}
		byName[f.Name] = f
	}
	mb, err := readSmall(byName, "manifest.json")
	if err != nil {
		return nil, err
	}
	sb, err := readSmall(byName, "manifest.sig")
	if err != nil {
		return nil, err
	}
	rep := &BundleReport{}
	if err := json.Unmarshal(mb, &rep.Manifest); err != nil || rep.Manifest.Format != BundleFormat {
		return nil, bundleErr("manifest.json is not a %s manifest", BundleFormat)
	}
	m := rep.Manifest
	pub, err := base64.StdEncoding.DecodeString(m.PublicKey)
	sig, serr := base64.StdEncoding.DecodeString(strings.TrimSpace(string(sb)))
	if err != nil || serr != nil || len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, mb, sig) {
		return nil, bundleErr("manifest.sig is not a valid signature of manifest.json")
	}
	if trusted != nil && !bytes.Equal(trusted, pub) {
		return nil, bundleErr("manifest signed by key %s, not the trusted key", m.PublicKey)
	}
	listed := map[string]bool{"manifest.json": true, "manifest.sig": true}
	var recName string
	for _, mf := range m.Files {
		listed[mf.Name] = true
		f := byName[mf.Name]
		if f == nil {
			return nil, bundleErr("%s is listed in the manifest but missing", mf.Name)
		}
		if int64(f.UncompressedSize64) != mf.Size {
			return nil, bundleErr("%s: size %d, manifest says %d", mf.Name, f.UncompressedSize64, mf.Size)
		}
		rc, err := f.Open()
		if err != nil {
			return nil, bundleErr("%s: %v", mf.Name, err)
		}
		h := sha256.New()
		n, err := io.Copy(h, io.LimitReader(rc, mf.Size+1))
		rc.Close()
		if err != nil || n != mf.Size || hex.EncodeToString(h.Sum(nil)) != mf.SHA256 {
			return nil, bundleErr("%s does not match its hash in the manifest", mf.Name)
		}
		if strings.HasPrefix(mf.Name, "recording/") && strings.HasSuffix(mf.Name, ".sgrec") {
			recName = mf.Name
		}
	}
	for name := range byName {
		if !listed[name] {
			return nil, bundleErr("%s is not listed in the manifest", name)
		}
	}
	if recName == "" {
		return nil, bundleErr("no recording in the bundle")
	}
	rb, err := readAll(byName[recName], maxBundleRecording)
	if err != nil {
		return nil, err
	}
	rep.Recording, rep.RecordingErr = recorder.Verify(bytes.NewReader(rb), int64(len(rb)))
	if rep.Recording.SessionID != m.SessionID {
		return nil, bundleErr("the recording is of session %q, the manifest says %q", rep.Recording.SessionID, m.SessionID)
	}
	if byName["audit.json"] != nil {
		ab, err := readSmall(byName, "audit.json")
		if err != nil {
			return nil, err
		}
		n, err := verifyAuditSlice(ab, m.SessionID, rep.Recording.Signer)
		if err != nil {
			return nil, bundleErr("audit.json: %v", err)
		}
		rep.AuditRecords = n
	}
	return rep, nil
}

func readSmall(byName map[string]*zip.File, name string) ([]byte, error) {
	f := byName[name]
	if f == nil {
		return nil, bundleErr("%s is missing", name)
	}
	return readAll(f, maxSmallFile)
}

func readAll(f *zip.File, limit int64) ([]byte, error) {
	if f.UncompressedSize64 > uint64(limit) {
		return nil, bundleErr("%s is larger than %d bytes", f.Name, limit)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, bundleErr("%s: %v", f.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, bundleErr("%s: %v", f.Name, err)
	}
	if int64(len(b)) > limit {
		return nil, bundleErr("%s is larger than %d bytes", f.Name, limit)
	}
	return b, nil
}
