package keys

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
)

func (m *Material) loadOrCreateSigning(r io.Reader) error {
	path, pubPath := filepath.Join(m.Dir, SigningKeyFile), filepath.Join(m.Dir, SigningPubFile)
	data, pubData, err := readPair(m.Dir, SigningKeyFile, SigningPubFile)
	if err != nil {
		return err
	}
	if data == nil {
		key, err := newEd25519Key(r)
		if err != nil {
			return err
		}
		if data, err = encodePKCS8(key); err != nil {
			return err
		}
		if err := writeAtomic(path, data, 0o600); err != nil {
			return err
		}
	}
	der, err := decodePEM(path, data, "PRIVATE KEY")
	if err != nil {
		return err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return fmt.Errorf("keys: %s: %w", path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return fmt.Errorf("keys: %s: want an Ed25519 key", path)
	}
	m.SigningKey = key
	m.SigningPublic = key.Public().(ed25519.PublicKey)
	if pubData == nil {
		pubDER, err := x509.MarshalPKIXPublicKey(m.SigningPublic)
		if err != nil {
			return fmt.Errorf("keys: %s: %w", pubPath, err)
		}
		return writeAtomic(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)
	}
	pub, err := ParseSigningPublicKey(pubData)
	if err != nil || !pub.Equal(m.SigningPublic) {
		return fmt.Errorf("keys: %s does not hold the public key of %s", pubPath, path)
	}
	return nil
}

// LoadSigningPublic reads the public signing key from dir's signing.pub,
// for verifiers of recordings and audit checkpoints: unlike LoadOrCreate it
// reads no private key and creates nothing, so it needs neither the
// gateway's user nor write access. A missing file is an error wrapping
// fs.ErrNotExist.
func LoadSigningPublic(dir string) (ed25519.PublicKey, error) {
	path := filepath.Join(dir, SigningPubFile)
	data, err := readPublic(path)
	if err != nil {
		return nil, err
	}
	if data == nil {
		return nil, fmt.Errorf("keys: %s: %w", path, fs.ErrNotExist)
	}
	return ParseSigningPublicKey(data)
}

// ParseSigningPublicKey parses the contents of signing.pub (a PKIX "PUBLIC
// KEY" PEM block holding an Ed25519 key), for verifiers that have only that
// file.
func ParseSigningPublicKey(data []byte) (ed25519.PublicKey, error) {
	der, err := decodePEM(SigningPubFile, data, "PUBLIC KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("keys: %s: %w", SigningPubFile, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("keys: %s: want an Ed25519 public key", SigningPubFile)
	}
	return pub, nil
}
