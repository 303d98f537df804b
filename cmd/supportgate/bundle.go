package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"supportgate/recorder"
	"supportgate/review"
)

// isZip reports whether the file at path starts like a zip archive.
func isZip(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var magic [4]byte
	_, err = f.Read(magic[:])
	return err == nil && bytes.Equal(magic[:], []byte("PK\x03\x04"))
}

// verifyBundle checks an evidence bundle: its signed manifest and file
// hashes, the recording inside (exit codes as for a recording), and the
// audit slice. --signer, if given, must be the gateway key that signed
// the recording.
func verifyBundle(env *cliEnv, path, signer string) error {
	f, err := os.Open(path)
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	rep, err := review.VerifyBundle(f, st.Size(), nil)
	if err != nil {
		fmt.Fprintf(env.stdout, "%s: TAMPERED: %v\n", path, err)
		return &exitError{code: 1, msg: fmt.Sprintf("%s: %v", path, err)}
	}
	m := rep.Manifest
	fmt.Fprintf(env.stdout, "bundle:     %s\nsession:    %s\nmade:       %s by %s\nmanifest:   signed by %s\n",
		path, m.SessionID, m.CreatedAt.Format("2006-01-02 15:04:05Z07:00"), m.Reviewer, m.PublicKey)
	if rep.AuditRecords > 0 {
		fmt.Fprintf(env.stdout, "audit:      %d records, chain and checkpoint signature verified\n", rep.AuditRecords)
	} else {
		fmt.Fprintf(env.stdout, "audit:      %s\n", m.Audit)
	}
	printReport(env.stdout, rep.Recording)
	if signer != "" {
		want, kerr := loadSignerKey(signer)
		if kerr != nil {
			return &exitError{code: 2, msg: "verify: --signer: " + kerr.Error()}
		}
		if !want.Equal(rep.Recording.Signer) {
			return &exitError{code: 1, msg: fmt.Sprintf("%s: tampered: the recording is signed by key %s, not the trusted gateway key", path, rep.Recording.SignerFingerprint())}
		}
	}
	var te *recorder.TamperError
	switch {
	case errors.As(rep.RecordingErr, &te):
		return &exitError{code: 1, msg: fmt.Sprintf("%s: the bundle is intact but its recording is tampered: %s", path, tamperText(te))}
	case rep.RecordingErr != nil:
		return &exitError{code: 2, msg: fmt.Sprintf("%s: the bundle is intact; its recording is cut short", path)}
	}
	return nil
}
