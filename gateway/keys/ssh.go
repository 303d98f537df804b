package keys

import (
	"bytes"
	"crypto/ed25519"
	"encoding/pem"
	"fmt"
	"io"
	"path/filepath"

	"golang.org/x/crypto/ssh"
)

func newEd25519Key(r io.Reader) (ed25519.PrivateKey, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(r, seed); err != nil {
		return nil, fmt.Errorf("keys: generate Ed25519 key: %w", err)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// loadOrCreateSSH loads or creates an Ed25519 key in OpenSSH format at
// dir/name, with its authorized_keys line in dir/name.pub.
func loadOrCreateSSH(dir, name, comment string, r io.Reader) (ssh.Signer, error) {
	path, pubPath := filepath.Join(dir, name), filepath.Join(dir, name+".pub")
	data, pubData, err := readPair(dir, name, name+".pub")
	if err != nil {
		return nil, err
	}
	if data == nil {
		key, err := newEd25519Key(r)
		if err != nil {
			return nil, err
		}
		block, err := ssh.MarshalPrivateKey(key, comment)
		if err != nil {
			return nil, fmt.Errorf("keys: %s: %w", path, err)
		}
		data = pem.EncodeToMemory(block)
		if err := writeAtomic(path, data, 0o600); err != nil {
			return nil, err
		}
	}
	signer, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("keys: %s: %w", path, err)
	}
	if t := signer.PublicKey().Type(); t != ssh.KeyAlgoED25519 {
		return nil, fmt.Errorf("keys: %s: key type %s, want %s", path, t, ssh.KeyAlgoED25519)
	}
	line := ssh.MarshalAuthorizedKey(signer.PublicKey())
	line = append(bytes.TrimSuffix(line, []byte("\n")), " "+comment+"\n"...)
	if pubData == nil {
		if err := writeAtomic(pubPath, line, 0o644); err != nil {
			return nil, err
		}
	} else if pub, _, _, _, err := ssh.ParseAuthorizedKey(pubData); err != nil || !bytes.Equal(pub.Marshal(), signer.PublicKey().Marshal()) {
		return nil, fmt.Errorf("keys: %s does not hold the public key of %s", pubPath, path)
	}
	return signer, nil
}
