package review

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"supportgate/agent"
)

// Gateway is a Source that reviews through a gateway's API as an auditor.
// Recordings are downloaded once, still encrypted, into a private
// temporary directory that Close removes; the gateway audits each
// download, and Note and Evidence are audited calls too.
type Gateway struct {
	c    *agent.Client
	name string
	dir  string

	mu        sync.Mutex // guards files, locks, truncated
	files     map[string]string
	locks     map[string]*sync.Mutex // one download at a time per recording
	truncated bool                   // the last List did not get every session
}

// NewGateway returns a Source over the gateway that c is logged in to;
// name is shown in the page header.
func NewGateway(c *agent.Client, name string) (*Gateway, error) {
	dir, err := os.MkdirTemp("", "supportgate-review-")
	if err != nil {
		return nil, fmt.Errorf("review: %w", err)
	}
	return &Gateway{c: c, name: name, dir: dir, files: map[string]string{}, locks: map[string]*sync.Mutex{}}, nil
}

func (g *Gateway) Name() string { return g.name }

func (g *Gateway) List(ctx context.Context) ([]Item, error) {
	recs, truncated, err := g.c.Recordings(ctx)
	if err != nil {
		return nil, fmt.Errorf("review: listing the gateway's recordings: %w", err)
	}
	g.mu.Lock()
	g.truncated = truncated
	g.mu.Unlock()
	items := make([]Item, 0, len(recs))
	for _, r := range recs {
		it := Item{
			ID: r.SessionID, SessionID: r.SessionID, Agent: r.Agent, Customer: r.Customer,
			Scopes: r.Scopes, State: r.State, EndReason: r.EndReason, Size: r.Size, Missing: r.Missing,
		}
		if r.ApprovedAt != nil {
			it.Start = *r.ApprovedAt // until the file's own header is read (catalog.open)
		}
		// With parts, only the last one ends with the session: the
		// others end where the gateway stopped.
		base := it
		if len(r.Parts) > 0 {
			base.EndReason = ""
		}
		items = append(items, base)
		for i, p := range r.Parts {
			// A continuation after a gateway restart: its own recording.
			part := it
			part.ID, part.Size, part.Missing = p.ID, p.Size, false
			if i < len(r.Parts)-1 {
				part.EndReason = ""
			}
			items = append(items, part)
		}
	}
	return items, nil
}

// Truncated reports whether the gateway left older sessions out of the
// last List (it lists at most the newest 10,000).
func (g *Gateway) Truncated() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.truncated
}

func (g *Gateway) Open(ctx context.Context, id string) (File, error) {
	if !validID(id) {
		return nil, errors.New("review: invalid recording id")
	}
	g.mu.Lock()
	l := g.locks[id]
	if l == nil {
		l = &sync.Mutex{}
		g.locks[id] = l
	}
	g.mu.Unlock()
	l.Lock()
	defer l.Unlock()
	g.mu.Lock()
	path := g.files[id]
	g.mu.Unlock()
	if path == "" {
		var err error
		if path, err = g.download(ctx, id); err != nil {
			return nil, err
		}
		g.mu.Lock()
		g.files[id] = path
		g.mu.Unlock()
	}
	return openFile(path)
}

func (g *Gateway) download(ctx context.Context, id string) (string, error) {
	path := filepath.Join(g.dir, id+".sgrec")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", fmt.Errorf("review: %w", err)
	}
	_, err = g.c.DownloadRecording(ctx, id, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return "", fmt.Errorf("review: downloading %s: %w", id, err)
	}
	return path, nil
}

func (g *Gateway) Note(ctx context.Context, id, action, detail string) error {
	return g.c.NoteRecording(ctx, id, action, detail)
}

func (g *Gateway) Evidence(ctx context.Context, id string) (json.RawMessage, error) {
	return g.c.Evidence(ctx, id)
}

// Close removes the downloaded recordings.
func (g *Gateway) Close() error { return os.RemoveAll(g.dir) }
