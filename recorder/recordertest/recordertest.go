// Package recordertest provides keys, a manual clock and helpers for tests
// that write or read recordings.
package recordertest

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"supportgate/recorder"
)

// Keys are a compliance identity and a gateway signing key.
type Keys struct {
	Identity  *age.X25519Identity
	Recipient *age.X25519Recipient
	Signer    ed25519.PrivateKey
}

// NewKeys returns fresh random keys.
func NewKeys(t testing.TB) Keys {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return Keys{Identity: id, Recipient: id.Recipient(), Signer: priv}
}

// FixedKeys returns keys derived from a seed string and an age identity
// string, for golden files.
func FixedKeys(t testing.TB, seed, identity string) Keys {
	t.Helper()
	id, err := age.ParseX25519Identity(identity)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256([]byte(seed))
	return Keys{Identity: id, Recipient: id.Recipient(), Signer: ed25519.NewKeyFromSeed(s[:])}
}

// Clock is a manual clock, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at start.
func NewClock(start time.Time) *Clock { return &Clock{t: start} }

// Now returns the current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Config returns a writer configuration for keys and clock. Its flush
// interval is an hour, so no background tick races with the manual clock
// and output is deterministic; call Writer.Flush or set FlushInterval when
// a test needs periodic flushing.
func Config(k Keys, c *Clock) recorder.WriterConfig {
	return recorder.WriterConfig{
		FlushInterval: time.Hour,
		RecordingID:   "rec-1",
		SessionID:     "sess-1",
		Start:         c.Now(),
		Recipients:    []age.Recipient{k.Recipient},
		Signer:        k.Signer,
		Now:           c.Now,
	}
}

// ReadAll reads every record of the recording at path, copying their data;
// it returns the records and the error that ended reading (nil at a
// verified end).
func ReadAll(t testing.TB, path string, id age.Identity) ([]recorder.Record, error) {
	t.Helper()
	r, err := recorder.OpenFile(path, id)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var recs []recorder.Record
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return recs, nil
		}
		if err != nil {
			return recs, err
		}
		rec.Data = append([]byte(nil), rec.Data...)
		recs = append(recs, rec)
	}
}
