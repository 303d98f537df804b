package keys

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestLoadSigningPublic(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	m, _, err := LoadOrCreate(dir, opts())
	if err != nil {
		t.Fatal(err)
	}
	// Verifiers need only signing.pub: not the private keys, which they
	// may not be able to read.
	for _, name := range privateFiles {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	pub, err := LoadSigningPublic(dir)
	if err != nil || !pub.Equal(m.SigningPublic) {
		t.Fatalf("LoadSigningPublic: got %x, %v; want %x", pub, err, m.SigningPublic)
	}

	missing := filepath.Join(t.TempDir(), "missing")
	if _, err := LoadSigningPublic(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadSigningPublic of a missing directory: got %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Lstat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadSigningPublic created %s", missing)
	}
	if err := os.WriteFile(filepath.Join(dir, SigningPubFile), []byte("not a key\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSigningPublic(dir); err == nil {
		t.Error("LoadSigningPublic of a garbled signing.pub: got nil error, want one")
	}
}
