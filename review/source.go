package review

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ErrNoEvidence is returned by a Source that has no audit log to slice.
var ErrNoEvidence = errors.New("review: this source has no audit log")

// Source is where recordings come from: a folder of .sgrec files or a
// gateway. Implementations are safe for concurrent use.
type Source interface {
	// Name says where the recordings come from, for the page header.
	Name() string
	// List returns the recordings the source holds, newest first when it
	// knows their times.
	List(ctx context.Context) ([]Item, error)
	// Open returns the encrypted bytes of one recording.
	Open(ctx context.Context, id string) (File, error)
	// Note reports that the reviewer opened or exported a recording
	// (action "open", "export" or "evidence").
	Note(ctx context.Context, id, action, detail string) error
	// Evidence returns the audit-log slice of the recording's session in
	// the gateway's JSON form, or ErrNoEvidence.
	Evidence(ctx context.Context, id string) (json.RawMessage, error)
	// Close releases what the source holds (downloaded files).
	Close() error
}

// File is an open recording.
type File interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// Item is a recording as its source lists it. Fields a folder cannot know
// stay empty until the recording's own session.info event fills them.
type Item struct {
	ID        string    `json:"id"`
	SessionID string    `json:"session_id"`
	Agent     string    `json:"agent"`
	Customer  string    `json:"customer"`
	Scopes    []string  `json:"scopes"`
	State     string    `json:"state,omitempty"` // the session's state, when the source knows it
	EndReason string    `json:"end_reason"`
	Start     time.Time `json:"start"`
	Size      int64     `json:"size"`
	Missing   bool      `json:"missing"` // the session has no recording file
}

// maxItems caps the recordings one review loads.
const maxItems = 10000

// Folder is a Source reading the .sgrec files of one directory.
type Folder struct {
	dir string
}

// NewFolder returns a Folder source for dir, which must exist.
func NewFolder(dir string) (*Folder, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("review: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("review: %s is not a directory", dir)
	}
	return &Folder{dir: dir}, nil
}

func (f *Folder) Name() string { return f.dir }

func (f *Folder) List(ctx context.Context) ([]Item, error) {
	des, err := os.ReadDir(f.dir)
	if err != nil {
		return nil, fmt.Errorf("review: %w", err)
	}
	var items []Item
	for _, de := range des {
		name := de.Name()
		id, ok := strings.CutSuffix(name, ".sgrec")
		if !ok || !de.Type().IsRegular() || !validID(id) {
			continue
		}
		info, err := de.Info()
		if err != nil {
			continue
		}
		if len(items) == maxItems {
			return nil, fmt.Errorf("review: %s holds more than %d recordings; review a smaller folder", f.dir, maxItems)
		}
		items = append(items, Item{ID: id, Size: info.Size()})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].ID < items[j].ID })
	return items, nil
}

func (f *Folder) Open(ctx context.Context, id string) (File, error) {
	if !validID(id) {
		return nil, errors.New("review: invalid recording id")
	}
	return openFile(filepath.Join(f.dir, id+".sgrec"))
}

func (f *Folder) Note(ctx context.Context, id, action, detail string) error { return nil }

func (f *Folder) Evidence(ctx context.Context, id string) (json.RawMessage, error) {
	return nil, ErrNoEvidence
}

func (f *Folder) Close() error { return nil }

// osFile is a File on disk.
type osFile struct {
	*os.File
	size int64
}

func (f osFile) Size() int64 { return f.size }

func openFile(path string) (File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("review: %w", err)
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("review: %w", err)
	}
	return osFile{fh, st.Size()}, nil
}

// validID accepts the recording ids the gateway writes: session ids with
// an optional ".N" for a resumed recording. Nothing that could name
// another path.
func validID(id string) bool {
	if id == "" || len(id) > 80 || id[0] == '.' {
		return false
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return !strings.Contains(id, "..")
}
