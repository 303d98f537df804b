package main

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"strings"

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
// audit slice. signer, if not nil, must be the gateway key that signed the
// recording. The manifest may be signed by any key, so every field of it
// is printed through printable.
func verifyBundle(env *cliEnv, path string, signer ed25519.PublicKey) error {
	p := printable(path)
	f, err := os.Open(path)
	if err != nil {
		return &exitError{code: verifyTampered, msg: printable(err.Error())}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return &exitError{code: verifyTampered, msg: printable(err.Error())}
	}
	rep, err := review.VerifyBundle(f, st.Size(), nil)
	if err != nil {
		fmt.Fprintf(env.stdout, "%s: TAMPERED: %s\n", p, printable(err.Error()))
		return &exitError{code: verifyTampered, msg: fmt.Sprintf("%s: %s", p, printable(err.Error()))}
	}
	m := rep.Manifest
	fmt.Fprintf(env.stdout, "bundle:     %s\nsession:    %s\nmade:       %s by %s\nmanifest:   signed by %s\n",
		p, printable(m.SessionID), m.CreatedAt.Format("2006-01-02 15:04:05Z07:00"), printable(m.Reviewer), printable(m.PublicKey))
	if rep.AuditRecords > 0 {
		fmt.Fprintf(env.stdout, "audit:      %d records, chain and checkpoint signature verified\n", rep.AuditRecords)
	} else {
		fmt.Fprintf(env.stdout, "audit:      %s\n", printable(m.Audit))
	}
	printReport(env.stdout, rep.Recording)
	if signer != nil && !signer.Equal(rep.Recording.Signer) {
		return &exitError{code: verifyTampered, msg: fmt.Sprintf("%s: tampered: the recording is signed by key %s, not the trusted gateway key", p, rep.Recording.SignerFingerprint())}
	}
	var te *recorder.TamperError
	var ce *recorder.CutShortError
	switch {
	case errors.As(rep.RecordingErr, &te):
		return &exitError{code: verifyTampered, msg: fmt.Sprintf("%s: the bundle is intact but its recording is tampered: %s", p, tamperText(te))}
	case errors.As(rep.RecordingErr, &ce):
		return &exitError{code: verifyCutShort, msg: fmt.Sprintf("%s: the bundle is intact; its recording is cut short after record %d (signed through record %d)", p, ce.Records, ce.Signed)}
	case rep.RecordingErr != nil:
		// Not a recording at all, or unreadable: never "intact".
		return &exitError{code: verifyTampered, msg: fmt.Sprintf("%s: the bundle is intact but its recording does not verify: %s", p, printable(strings.TrimPrefix(rep.RecordingErr.Error(), "recorder: ")))}
	}
	return nil
}
