package detect

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
)

// DirStore keeps each agent's baseline as DIR/AGENT.json, written
// atomically (temporary file, fsync, rename), so baselines survive a
// restart of the gateway without a database table.
type DirStore struct {
	Dir string
}

var _ BaselineStore = DirStore{}

var agentFileRE = regexp.MustCompile(`^[a-z][a-z0-9._-]{0,31}$`)

func (d DirStore) path(agent string) (string, error) {
	if !agentFileRE.MatchString(agent) {
		return "", fmt.Errorf("detect: agent name %q cannot name a baseline file", agent)
	}
	return filepath.Join(d.Dir, agent+".json"), nil
}

// Load reads the agent's baseline, or ErrNoBaseline.
func (d DirStore) Load(_ context.Context, agent string) ([]byte, error) {
	p, err := d.path(agent)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoBaseline
	}
	if err == nil && len(b) > MaxBaselineBytes {
		return nil, fmt.Errorf("detect: %s is larger than %d bytes", p, MaxBaselineBytes)
	}
	return b, err
}

// Save replaces the agent's baseline.
func (d DirStore) Save(_ context.Context, agent string, blob []byte) error {
	if _, err := d.path(agent); err != nil {
		return err
	}
	return d.writeFile(agent+".json", blob)
}

// writeFile replaces DIR/name atomically.
func (d DirStore) writeFile(name string, blob []byte) error {
	if err := os.MkdirAll(d.Dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(d.Dir, "."+name+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(blob); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), filepath.Join(d.Dir, name))
}
