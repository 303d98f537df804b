package wghub

import (
	"encoding/base64"
	"fmt"

	"golang.org/x/crypto/curve25519"
)

// PublicKey derives a WireGuard public key from a private key.
func PublicKey(priv [32]byte) [32]byte {
	var pub [32]byte
	out, err := curve25519.X25519(priv[:], curve25519.Basepoint)
	if err == nil {
		copy(pub[:], out)
	}
	return pub
}

// ParseKey parses a base64 WireGuard key as wg(8) prints it.
func ParseKey(s string) ([32]byte, error) {
	var k [32]byte
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != 32 {
		return k, fmt.Errorf("wghub: invalid WireGuard key")
	}
	copy(k[:], b)
	return k, nil
}

// FormatKey renders a key as wg(8) prints it.
func FormatKey(k [32]byte) string { return base64.StdEncoding.EncodeToString(k[:]) }
