package recorder

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"time"
)

// Report is what Verify found.
type Report struct {
	Version     int // format version, from the header
	RecordingID string
	SessionID   string
	Start       time.Time
	Signer      ed25519.PublicKey
	Records     uint64        // intact records, checkpoints included
	Duration    time.Duration // time of the last intact record
	Checkpoints int           // verified checkpoints and end record
	Signed      uint64        // last record covered by a signature
	Stats       Stats         // from the last verified signature
	Complete    bool          // the signed end record and footer verified
}

// SignerFingerprint returns a short hex fingerprint of the signing key:
// the first 16 bytes of its SHA-256.
func (r *Report) SignerFingerprint() string {
	sum := sha256.Sum256(r.Signer)
	return hex.EncodeToString(sum[:16])
}

// Verify checks a whole recording without the data key: header signature,
// sequence, hash chain, checkpoint and end signatures, footer. It returns
// nil for an intact, complete recording, a *CutShortError for an intact
// prefix without its end, a *TamperError naming the first bad record, or
// another error when the input cannot be read. The report is never nil.
//
// Without the key, a frame edited together with every chain value after it
// is caught at the next signed checkpoint, which is the record named;
// Reader, with the key, names the edited record itself.
func Verify(ra io.ReaderAt, size int64) (*Report, error) {
	rep := &Report{}
	r, err := newReader(ra, size)
	if err != nil {
		return rep, err
	}
	h := r.Header()
	rep.Version, rep.RecordingID, rep.SessionID, rep.Start, rep.Signer = h.Version, h.RecordingID, h.SessionID, h.Start, h.Signer
	for {
		_, _, _, err = r.nextFrame()
		if err != nil {
			break
		}
	}
	rep.Records = r.seq - 1
	rep.Duration = time.Duration(r.lastT)
	rep.Checkpoints, rep.Signed, rep.Stats = r.checkpoints, r.signed, r.stats
	if errors.Is(err, io.EOF) {
		rep.Complete = true
		return rep, nil
	}
	return rep, err
}

// VerifyFile verifies the recording at path; see Verify.
func VerifyFile(path string) (*Report, error) {
	f, size, err := openSized(path)
	if err != nil {
		return &Report{}, err
	}
	defer f.Close()
	return Verify(f, size)
}

// Ended reports, cheaply, whether a recording has its signed end: it
// checks the header's signature and the end record found through the
// footer, reading only those. It does not check the records between (use
// Verify); false means the recording was cut short or is still being
// written.
func Ended(ra io.ReaderAt, size int64) (bool, error) {
	r, err := newReader(ra, size)
	if err != nil {
		return false, err
	}
	if err := r.indexFromEnd(); err != nil {
		var te *TamperError
		if errors.As(err, &te) {
			return false, err
		}
		return false, nil
	}
	return true, nil
}
