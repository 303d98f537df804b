package identity

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
)

// Token prefixes. The prefix makes a leaked token recognisable (secret
// scanners, logs) and keeps one kind from being accepted as another.
const (
	APITokenPrefix     = "sgt_" // bearer tokens for the API and CLI
	ConsentTokenPrefix = "sgc_" // customer consent links, /c/TOKEN
	EnrollTokenPrefix  = "sge_" // one-time enrollment links
)

// TokenBytes is the entropy of every token: 256 bits.
const TokenBytes = 32

var tokenEnc = base64.RawURLEncoding.Strict()

// tokenBodyLen is the length of the base64url body of a token.
var tokenBodyLen = tokenEnc.EncodedLen(TokenBytes)

// ErrMalformedToken is returned by ParseToken for anything that is not a
// token of the expected kind. It never contains the token.
var ErrMalformedToken = errors.New("identity: malformed token")

// NewToken returns a fresh opaque token, prefix followed by 32 random bytes
// in unpadded base64url, and its HashToken, which is what the caller stores.
// The prefix must be 1 to 16 lowercase letters or digits, starting with a
// letter, followed by '_' (like APITokenPrefix).
func NewToken(rand io.Reader, prefix string) (token string, hash [32]byte, err error) {
	if err := checkPrefix(prefix); err != nil {
		return "", [32]byte{}, err
	}
	var b [TokenBytes]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return "", [32]byte{}, fmt.Errorf("identity: token: %w", err)
	}
	token = prefix + tokenEnc.EncodeToString(b[:])
	return token, HashToken(token), nil
}

// HashToken returns the SHA-256 of the whole token, prefix included. Tokens
// carry 256 random bits, so a fast unsalted hash is enough: the store holds
// only hashes, and a stolen database yields no usable token.
func HashToken(token string) [32]byte {
	return sha256.Sum256([]byte(token))
}

// EqualTokenHash compares two token hashes in constant time.
func EqualTokenHash(a, b [32]byte) bool {
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// ParseToken checks that s has the shape of a token made by NewToken with
// prefix: the prefix, then exactly 43 canonical base64url characters. It
// says nothing about whether the token exists; look up HashToken(s) for that.
func ParseToken(prefix, s string) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	if len(s) != len(prefix)+tokenBodyLen {
		return fmt.Errorf("%w: wrong length", ErrMalformedToken)
	}
	if s[:len(prefix)] != prefix {
		return fmt.Errorf("%w: want prefix %q", ErrMalformedToken, prefix)
	}
	var b [TokenBytes]byte
	if n, err := tokenEnc.Decode(b[:], []byte(s[len(prefix):])); err != nil || n != TokenBytes {
		return fmt.Errorf("%w: not base64url", ErrMalformedToken)
	}
	return nil
}

func checkPrefix(prefix string) error {
	n := len(prefix)
	ok := n >= 2 && n <= 17 && prefix[n-1] == '_' && prefix[0] >= 'a' && prefix[0] <= 'z'
	for i := 1; ok && i < n-1; i++ {
		c := prefix[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
	}
	if !ok {
		return fmt.Errorf("identity: token prefix %q: want 1-16 lowercase letters or digits and '_'", prefix)
	}
	return nil
}
