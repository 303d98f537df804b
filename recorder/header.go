package recorder

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"
)

const (
	magicPrefix = "supportgate-recording v" // then the version and a newline
	cipherName  = "chacha20poly1305"
	maxHeader   = 64 << 10
	dataKeySize = 32
)

// Header is the clear part of a recording: who and when, and the key that
// signs its checkpoints and end record.
type Header struct {
	// Version is the format version: 1 (SHA-256 chain), 2 (BLAKE3 chain)
	// or 3 (BLAKE3 chain, terminal records name their channel; written by
	// this Writer).
	Version     int
	RecordingID string
	SessionID   string
	Start       time.Time
	Signer      ed25519.PublicKey
	// WrappedKey is the data key as an armored age file.
	WrappedKey []byte
}

// validID reports whether s may be used as a recording or session id.
func validID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._:-", c)) {
			return false
		}
	}
	return true
}

// wrapKey encrypts the data key to the recipients as an armored age file.
func wrapKey(key []byte, recipients []age.Recipient) ([]byte, error) {
	var buf bytes.Buffer
	aw := armor.NewWriter(&buf)
	w, err := age.Encrypt(aw, recipients...)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(key); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	if err := aw.Close(); err != nil {
		return nil, err
	}
	if buf.Len() > 0 && buf.Bytes()[buf.Len()-1] != '\n' {
		buf.WriteByte('\n')
	}
	return buf.Bytes(), nil
}

// unwrapKey decrypts the data key with one of the identities.
func unwrapKey(wrapped []byte, ids []age.Identity) ([]byte, error) {
	r, err := age.Decrypt(armor.NewReader(bytes.NewReader(wrapped)), ids...)
	if err != nil {
		return nil, err
	}
	key, err := io.ReadAll(io.LimitReader(r, dataKeySize+1))
	if err != nil {
		return nil, err
	}
	if len(key) != dataKeySize {
		return nil, errors.New("wrapped data key has the wrong size")
	}
	return key, nil
}

// marshalHeader renders and signs the header; the result ends with the
// blank line that separates it from the frames.
func marshalHeader(h Header, signer ed25519.PrivateKey) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s%d\n", magicPrefix, h.Version)
	fmt.Fprintf(&b, "recording-id: %s\n", h.RecordingID)
	fmt.Fprintf(&b, "session-id: %s\n", h.SessionID)
	fmt.Fprintf(&b, "start: %s\n", h.Start.UTC().Format(time.RFC3339Nano))
	fmt.Fprintf(&b, "cipher: %s\n", cipherName)
	fmt.Fprintf(&b, "signer: %s\n", base64.StdEncoding.EncodeToString(h.Signer))
	b.WriteString("data-key:\n")
	b.Write(h.WrappedKey)
	sig := ed25519.Sign(signer, append([]byte(headerSigContext), b.Bytes()...))
	fmt.Fprintf(&b, "signature: %s\n\n", base64.StdEncoding.EncodeToString(sig))
	return b.Bytes()
}

// headerVersion returns the format version named by the first line of b,
// or 0 when b does not start with one this package reads.
func headerVersion(b []byte) int {
	for _, v := range []int{version1, version2, version3} {
		if bytes.HasPrefix(b, fmt.Appendf(nil, "%s%d\n", magicPrefix, v)) {
			return v
		}
	}
	return 0
}

// parseHeader parses and checks the header at the start of b and returns
// it with its length in bytes.
func parseHeader(b []byte) (Header, int, error) {
	var h Header
	if h.Version = headerVersion(b); h.Version == 0 {
		return h, 0, errors.New("not a supportgate recording (bad magic line)")
	}
	sigAt := bytes.Index(b, []byte("\nsignature: "))
	if sigAt < 0 {
		return h, 0, errors.New("header: no signature line")
	}
	signed := b[:sigAt+1]
	rest := b[sigAt+1:]
	nl := bytes.IndexByte(rest, '\n')
	if nl < 0 || nl+1 >= len(rest) || rest[nl+1] != '\n' {
		return h, 0, errors.New("header: unterminated signature line")
	}
	sig, err := base64.StdEncoding.DecodeString(string(rest[len("signature: "):nl]))
	if err != nil || len(sig) != sigLen {
		return h, 0, errors.New("header: malformed signature")
	}
	total := len(signed) + nl + 2

	lines := strings.SplitAfter(string(signed[len(magicPrefix)+2:]), "\n") // after "vN\n"
	field := func(i int, name string) (string, error) {
		if i >= len(lines) {
			return "", fmt.Errorf("header: missing %s", name)
		}
		v, ok := strings.CutPrefix(lines[i], name+": ")
		if !ok || !strings.HasSuffix(v, "\n") {
			return "", fmt.Errorf("header: missing %s", name)
		}
		return strings.TrimSuffix(v, "\n"), nil
	}
	if h.RecordingID, err = field(0, "recording-id"); err != nil {
		return h, 0, err
	}
	if h.SessionID, err = field(1, "session-id"); err != nil {
		return h, 0, err
	}
	start, err := field(2, "start")
	if err != nil {
		return h, 0, err
	}
	if h.Start, err = time.Parse(time.RFC3339Nano, start); err != nil {
		return h, 0, errors.New("header: malformed start time")
	}
	c, err := field(3, "cipher")
	if err != nil {
		return h, 0, err
	}
	if c != cipherName {
		return h, 0, fmt.Errorf("header: unsupported cipher %q", c)
	}
	signerB64, err := field(4, "signer")
	if err != nil {
		return h, 0, err
	}
	signer, err := base64.StdEncoding.DecodeString(signerB64)
	if err != nil || len(signer) != ed25519.PublicKeySize {
		return h, 0, errors.New("header: malformed signer key")
	}
	h.Signer = signer
	if len(lines) < 6 || lines[5] != "data-key:\n" {
		return h, 0, errors.New("header: missing data-key")
	}
	h.WrappedKey = []byte(strings.Join(lines[6:], ""))
	if !validID(h.RecordingID) || !validID(h.SessionID) {
		return h, 0, errors.New("header: malformed id")
	}
	if !ed25519.Verify(h.Signer, append([]byte(headerSigContext), signed...), sig) {
		return h, 0, errors.New("header: signature does not verify")
	}
	return h, total, nil
}
