package keys

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"path/filepath"

	"golang.org/x/crypto/curve25519"
)

// clamp applies the Curve25519 private key clamping that wg genkey does.
func clamp(k *[32]byte) {
	k[0] &= 248
	k[31] &= 127
	k[31] |= 64
}

func (m *Material) loadOrCreateWireGuard(r io.Reader) error {
	path, pubPath := filepath.Join(m.Dir, WireGuardFile), filepath.Join(m.Dir, WireGuardPub)
	data, pubData, err := readPair(m.Dir, WireGuardFile, WireGuardPub)
	if err != nil {
		return err
	}
	if data == nil {
		var k [32]byte
		if _, err := io.ReadFull(r, k[:]); err != nil {
			return fmt.Errorf("keys: generate WireGuard key: %w", err)
		}
		clamp(&k)
		data = []byte(base64.StdEncoding.EncodeToString(k[:]) + "\n")
		if err := writeAtomic(path, data, 0o600); err != nil {
			return err
		}
	}
	priv, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(data)))
	if err != nil || len(priv) != 32 {
		return fmt.Errorf("keys: %s: want a base64 32-byte key as wg genkey writes", path)
	}
	copy(m.WireGuardPrivate[:], priv)
	clamp(&m.WireGuardPrivate) // X25519 clamps anyway; keep the field canonical
	pub, err := curve25519.X25519(m.WireGuardPrivate[:], curve25519.Basepoint)
	if err != nil {
		return fmt.Errorf("keys: %s: %w", path, err)
	}
	copy(m.WireGuardPublic[:], pub)
	line := []byte(base64.StdEncoding.EncodeToString(pub) + "\n")
	if pubData == nil {
		return writeAtomic(pubPath, line, 0o644)
	}
	if !bytes.Equal(bytes.TrimSpace(pubData), bytes.TrimSpace(line)) {
		return fmt.Errorf("keys: %s does not hold the public key of %s", pubPath, path)
	}
	return nil
}
