package keys

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// maxKeyFile bounds what readPrivate and readPublic read; every file here is
// a few kilobytes at most.
const maxKeyFile = 64 << 10

// readPrivate reads a private key file, refusing one that group or others
// can read. It returns (nil, nil) if the file does not exist.
func readPrivate(path string) ([]byte, error) {
	return readFile(path, true)
}

// readPublic reads a public file; (nil, nil) if it does not exist.
func readPublic(path string) ([]byte, error) {
	return readFile(path, false)
}

func readFile(path string, private bool) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("keys: %s is not a regular file", path)
	}
	if private && fi.Mode().Perm()&0o077 != 0 {
		return nil, &PermissionError{Path: path, Mode: fi.Mode()}
	}
	if fi.Size() > maxKeyFile {
		return nil, fmt.Errorf("keys: %s is %d bytes, larger than any key file", path, fi.Size())
	}
	b := make([]byte, fi.Size())
	n, err := f.ReadAt(b, 0)
	if err != nil && n != len(b) {
		return nil, fmt.Errorf("keys: read %s: %w", path, err)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("keys: %s is empty", path)
	}
	return b, nil
}

// writeAtomic writes data to path with perm via a temporary file in the same
// directory, fsyncs it, renames it into place and fsyncs the directory, so a
// crash leaves either the old file or the new one.
func writeAtomic(path string, data []byte, perm fs.FileMode) (err error) {
	dir, name := filepath.Split(path)
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("keys: write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("keys: write %s: %w", path, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("keys: write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("keys: write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("keys: write %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("keys: write %s: %w", path, err)
	}
	if d, derr := os.Open(filepath.Clean(dir)); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// missingPrivate is the error for a private key whose public half exists.
func missingPrivate(dir, private, public string) error {
	return fmt.Errorf("keys: %s is missing but %s exists; restore %s (a new key would break what trusts the old one) or remove %s to start over",
		filepath.Join(dir, private), public, private, public)
}

// readPair reads a private key file and its public file in dir; either may
// be absent (nil). A public file without its private key is an error: a
// new key would break what trusts the old one.
func readPair(dir, private, public string) (priv, pub []byte, err error) {
	if priv, err = readPrivate(filepath.Join(dir, private)); err != nil {
		return nil, nil, err
	}
	if pub, err = readPublic(filepath.Join(dir, public)); err != nil {
		return nil, nil, err
	}
	if priv == nil && pub != nil {
		return nil, nil, missingPrivate(dir, private, public)
	}
	return priv, pub, nil
}
