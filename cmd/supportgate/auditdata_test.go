package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"supportgate/gateway/keys"
)

// The audit commands read a data directory and change nothing in it: a
// wrong --data or a deleted database is refused, not replaced by a fresh
// empty log, and a copy verifies without write access or private keys.

// newAuditData initialises a data directory the way an operator does
// before the first serve, which also writes two audit records: user.created
// and a signed checkpoint.
func newAuditData(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if code, _, errs := runTestCLI(t, "admin", "user", "add", "--data", dir, "--name", "audrey", "--role", "auditor"); code != 0 {
		t.Fatalf("admin user add: exit %d: %s", code, errs)
	}
	return dir
}

// copyDir copies the files of src, with their permissions, into a new
// directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		return os.Chmod(filepath.Join(dst, rel), fi.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

type fileState struct {
	size  int64
	mode  fs.FileMode
	mtime time.Time
}

// dirState lists dir and everything under it with sizes, modes and mtimes.
func dirState(t *testing.T, dir string) map[string]fileState {
	t.Helper()
	m := map[string]fileState{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		m[p] = fileState{size: fi.Size(), mode: fi.Mode(), mtime: fi.ModTime()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sameDirState(t *testing.T, what string, before, after map[string]fileState) {
	t.Helper()
	for p, b := range before {
		a, ok := after[p]
		switch {
		case !ok:
			t.Errorf("%s removed %s", what, p)
		case a != b:
			t.Errorf("%s changed %s: got %+v, want %+v", what, p, a, b)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s created %s", what, p)
		}
	}
}

// wantRefused checks a refusal: exit 1 (unreadable, as for a tampered
// log) with one line on stderr that names want.
func wantRefused(t *testing.T, args []string, code int, stdout, stderr, want string) {
	t.Helper()
	if code != 1 || !strings.HasPrefix(stderr, "supportgate: ") || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, want) {
		t.Errorf("%s: got exit %d, stderr %q; want exit 1 and one line naming %q", strings.Join(args, " "), code, stderr, want)
	}
	if strings.Contains(stdout, "intact") {
		t.Errorf("%s: stdout %q claims an intact log", strings.Join(args, " "), stdout)
	}
}

func TestAuditMissingDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mistyped")
	for _, sub := range []string{"verify", "export"} {
		args := []string{"audit", sub, "--data", dir}
		code, out, errs := runTestCLI(t, args...)
		wantRefused(t, args, code, out, errs, dir+" does not exist")
		if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s: the data directory exists afterwards (%v); want nothing created", strings.Join(args, " "), err)
		}
	}
}

func TestAuditDeletedDatabase(t *testing.T) {
	dir := newAuditData(t)
	db := filepath.Join(dir, dbFile)
	for _, p := range []string{db, db + "-wal", db + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
	}
	before := dirState(t, dir)
	for _, sub := range []string{"verify", "export"} {
		args := []string{"audit", sub, "--data", dir}
		code, out, errs := runTestCLI(t, args...)
		wantRefused(t, args, code, out, errs, db+" does not exist")
		sameDirState(t, strings.Join(args, " "), before, dirState(t, dir))
	}
}

// TestAuditReadOnlyCopy verifies and exports a copy of a data directory.
// The tests run as root, where chmod takes away no access, so nothing in
// the copy may change (as on a read-only snapshot), and then the copy
// keeps only public keys (as for a reviewer who cannot read the private
// ones).
func TestAuditReadOnlyCopy(t *testing.T) {
	dir := copyDir(t, newAuditData(t))
	check := func(what string) {
		t.Helper()
		before := dirState(t, dir)
		code, out, errs := runTestCLI(t, "audit", "verify", "--data", dir)
		if code != 0 || !strings.Contains(out, "audit log intact: 2 records, 1 signed checkpoints") {
			t.Errorf("audit verify of %s: exit %d, stdout %q, stderr %q; want exit 0 and 2 intact records", what, code, out, errs)
		}
		sameDirState(t, "audit verify of "+what, before, dirState(t, dir))
		code, out, errs = runTestCLI(t, "audit", "export", "--data", dir)
		if code != 0 || strings.Count(out, "\n") != 2 || !strings.Contains(out, `"user.created"`) || !strings.Contains(out, `"audit.checkpoint"`) {
			t.Errorf("audit export of %s: exit %d, stdout %q, stderr %q; want the user.created and checkpoint records", what, code, out, errs)
		}
		sameDirState(t, "audit export of "+what, before, dirState(t, dir))
	}
	check("the copy")
	for _, name := range []string{keys.CAKeyFile, keys.TLSKeyFile, keys.SSHHostKeyFile, keys.SSHUserCAFile, keys.WireGuardFile, keys.SigningKeyFile} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	check("the copy without private keys")

	// An edited record is still named, and a missing public key refused.
	if err := editAuditRecord(filepath.Join(dir, dbFile), 1); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runTestCLI(t, "audit", "verify", "--data", dir)
	if code != 1 || !strings.Contains(errs, "record 1") {
		t.Errorf("audit verify after editing record 1: exit %d, stderr %q; want exit 1 naming record 1", code, errs)
	}
	pub := filepath.Join(dir, keys.SigningPubFile)
	if err := os.Remove(pub); err != nil {
		t.Fatal(err)
	}
	args := []string{"audit", "verify", "--data", dir}
	code, out, errs := runTestCLI(t, args...)
	wantRefused(t, args, code, out, errs, pub+" does not exist")
}
