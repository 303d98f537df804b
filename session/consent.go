package session

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
)

// Consent tokens carry 256 bits from the injected randomness (crypto/rand
// in production) and travel base64url-encoded in the link /c/TOKEN.
const (
	tokenBytes = 32
	// TokenLen is the length of an encoded consent token or client key.
	TokenLen = 43
)

// newSecret returns a random base64url token and its hash.
func newSecret(r io.Reader) (string, [32]byte, error) {
	var b [tokenBytes]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", [32]byte{}, fmt.Errorf("session: reading randomness: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	return tok, HashToken(tok), nil
}

// HashToken is how consent tokens and client keys are stored.
func HashToken(tok string) [32]byte { return sha256.Sum256([]byte(tok)) }

// ParseToken checks that s has the shape of a consent token or client key
// (untrusted input from URLs and cookies) and returns its hash.
func ParseToken(s string) ([32]byte, error) {
	if len(s) != TokenLen {
		return [32]byte{}, fmt.Errorf("%w: malformed token", ErrBadRequest)
	}
	var raw [tokenBytes]byte
	n, err := base64.RawURLEncoding.Decode(raw[:], []byte(s))
	if err != nil || n != tokenBytes {
		return [32]byte{}, fmt.Errorf("%w: malformed token", ErrBadRequest)
	}
	return HashToken(s), nil
}

// sameHash compares two hashes in constant time.
func sameHash(a, b [32]byte) bool { return subtle.ConstantTimeCompare(a[:], b[:]) == 1 }

// newID returns a 16-hex-digit session id.
func newID(r io.Reader) (string, error) {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("session: reading randomness: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// ValidID reports whether id has the form of a session id (16 lowercase
// hex digits), so that callers can refuse anything else before it reaches
// a store or a file name.
func ValidID(id string) bool {
	if len(id) != 16 {
		return false
	}
	for _, c := range []byte(id) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// newCode returns a uniformly random six-digit verification code.
func newCode(r io.Reader) (string, error) {
	const limit = (1 << 32) / 1000000 * 1000000 // reject above this for uniformity
	var b [4]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return "", fmt.Errorf("session: reading randomness: %w", err)
		}
		v := binary.BigEndian.Uint32(b[:])
		if uint64(v) < limit {
			return fmt.Sprintf("%06d", v%1000000), nil
		}
	}
}
