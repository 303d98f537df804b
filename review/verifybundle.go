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
	"math"
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

// Limits on what VerifyBundle reads. Every file is also read only up to
// the size its zip header and the manifest give it: a file longer than
// that is an error, never a larger allocation.
const (
	maxBundleFiles = 16
	maxManifest    = 1 << 20  // manifest.json
	maxManifestSig = 4 << 10  // manifest.sig
	maxSmallFile   = 64 << 20 // every other file but the recording
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
//
// A bundle carries exactly one recording, under recording/, stored
// without compression as writeBundle stores it: it is verified in place
// through ra, never read into memory, so a recording of gigabytes, or a
// compressed one that would inflate to them, costs no memory. A second
// recording, which the verification would not cover, is an error.
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
	mb, err := readSmall(byName, "manifest.json", maxManifest)
	if err != nil {
		return nil, err
	}
	sb, err := readSmall(byName, "manifest.sig", maxManifestSig)
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
	var rec *zip.File
	for _, mf := range m.Files {
		if listed[mf.Name] {
			return nil, bundleErr("%s is listed twice in the manifest", mf.Name)
		}
		listed[mf.Name] = true
		f := byName[mf.Name]
		if f == nil {
			return nil, bundleErr("%s is listed in the manifest but missing", mf.Name)
		}
		if f.UncompressedSize64 > math.MaxInt64 || int64(f.UncompressedSize64) != mf.Size {
			return nil, bundleErr("%s: size %d, manifest says %d", mf.Name, f.UncompressedSize64, mf.Size)
		}
		limit := int64(maxSmallFile)
		if strings.HasPrefix(mf.Name, "recording/") {
			switch {
			case !strings.HasSuffix(mf.Name, ".sgrec"):
				return nil, bundleErr("%s is not a recording (recording/*.sgrec)", mf.Name)
			case rec != nil:
				return nil, bundleErr("%s and %s: more than one recording; a bundle carries one", rec.Name, mf.Name)
			case f.Method != zip.Store || f.CompressedSize64 != f.UncompressedSize64:
				return nil, bundleErr("%s is compressed; a bundle stores its recording uncompressed, as supportgate writes it", mf.Name)
			}
			rec, limit = f, maxBundleRecording
		}
		if mf.Size > limit {
			return nil, bundleErr("%s is larger than %d bytes", mf.Name, limit)
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
	}
	for name := range byName {
		if !listed[name] {
			return nil, bundleErr("%s is not listed in the manifest", name)
		}
	}
	if rec == nil {
		return nil, bundleErr("no recording in the bundle")
	}
	// Stored, the recording is its bytes in the bundle: verify them there.
	off, err := rec.DataOffset()
	recSize := int64(rec.UncompressedSize64)
	if err != nil || off < 0 || off > size || recSize > size-off {
		return nil, bundleErr("%s lies outside the zip file", rec.Name)
	}
	rep.Recording, rep.RecordingErr = recorder.Verify(io.NewSectionReader(ra, off, recSize), recSize)
	if rep.Recording.SessionID != m.SessionID {
		return nil, bundleErr("the recording is of session %q, the manifest says %q", rep.Recording.SessionID, m.SessionID)
	}
	if byName["audit.json"] != nil {
		ab, err := readSmall(byName, "audit.json", maxSmallFile)
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

// readSmall reads the named file of a bundle, which must exist and be at
// most limit bytes.
func readSmall(byName map[string]*zip.File, name string, limit int64) ([]byte, error) {
	f := byName[name]
	if f == nil {
		return nil, bundleErr("%s is missing", name)
	}
	if f.UncompressedSize64 > uint64(limit) {
		return nil, bundleErr("%s is larger than %d bytes", f.Name, limit)
	}
	size := int64(f.UncompressedSize64)
	rc, err := f.Open()
	if err != nil {
		return nil, bundleErr("%s: %v", f.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, size+1))
	if err != nil {
		return nil, bundleErr("%s: %v", f.Name, err)
	}
	if int64(len(b)) != size {
		return nil, bundleErr("%s is not the %d bytes its zip header says", f.Name, size)
	}
	return b, nil
}
