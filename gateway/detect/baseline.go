package detect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"sync"
	"time"
)

// seriesCap is how many recent samples a Series keeps.
const seriesCap = 64

// Series keeps the most recent samples of one measure and answers robust
// statistics over them: median and MAD resist the outliers (including
// attacks) that would drag a mean and standard deviation.
type Series struct {
	Vals []float64 `json:"vals"`
	Next int       `json:"next"` // ring position once full
}

// Add records a sample.
func (s *Series) Add(v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	if len(s.Vals) < seriesCap {
		s.Vals = append(s.Vals, v)
		return
	}
	s.Next %= seriesCap
	s.Vals[s.Next] = v
	s.Next = (s.Next + 1) % seriesCap
}

// N is the number of samples held.
func (s *Series) N() int { return len(s.Vals) }

// Median of the samples; def if there are fewer than min.
func (s *Series) Median(min int, def float64) float64 {
	if len(s.Vals) < min || len(s.Vals) == 0 {
		return def
	}
	return median(slices.Clone(s.Vals))
}

// Spread is the MAD scaled to estimate a standard deviation (×1.4826),
// never below floor; floor if there are fewer than min samples.
func (s *Series) Spread(min int, floor float64) float64 {
	if len(s.Vals) < min || len(s.Vals) == 0 {
		return floor
	}
	m := median(slices.Clone(s.Vals))
	dev := make([]float64, len(s.Vals))
	for i, v := range s.Vals {
		dev[i] = math.Abs(v - m)
	}
	return math.Max(floor, 1.4826*median(dev))
}

// Quantile q in [0,1] of the samples (nearest rank); def if fewer than min.
func (s *Series) Quantile(q float64, minN int, def float64) float64 {
	if len(s.Vals) < minN || len(s.Vals) == 0 {
		return def
	}
	v := slices.Clone(s.Vals)
	sort.Float64s(v)
	i := int(math.Ceil(q*float64(len(v)))) - 1
	return v[max(0, min(i, len(v)-1))]
}

func median(v []float64) float64 {
	sort.Float64s(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// Caps on the sets a Baseline remembers; the least recently seen entry goes.
const (
	maxAddresses = 64
	maxCustomers = 4096
)

// baselineVersion is the Version of blobs this package writes.
const baselineVersion = 1

// Baseline is what the detector has learnt of one agent. It is stored as an
// opaque JSON blob through a BaselineStore.
type Baseline struct {
	Version int `json:"version"`

	// Activity by hour of day (Config.Location) of logins and sessions
	// created; halved whenever the total passes 4096, so it follows change.
	Hours    [24]float64 `json:"hours"`
	Activity int         `json:"activity"` // events counted into Hours, ever
	Logins   int         `json:"logins"`   // successful logins, ever
	Sessions int         `json:"sessions"` // sessions created, ever
	Days     int         `json:"days"`     // active days closed

	HourlyRate     Series `json:"hourly_rate"`     // sessions created per active hour
	DailyCustomers Series `json:"daily_customers"` // distinct customers per active day
	DenialRate     Series `json:"denial_rate"`     // denied / created, per active day
	BytesOut       Series `json:"bytes_out"`       // log2(1+bytes out) per session with channel data

	Addresses  map[string]time.Time `json:"addresses"`   // agent addresses, last seen
	Networks   map[string]time.Time `json:"networks"`    // their /24 (IPv4) or /48 (IPv6), last seen
	UserAgents map[string]time.Time `json:"user_agents"` // from login.success detail user_agent
	Customers  map[string]time.Time `json:"customers"`   // customers served, last seen

	// The open hour and day being accumulated.
	Hour          time.Time `json:"hour"`
	HourSessions  int       `json:"hour_sessions"`
	Day           time.Time `json:"day"`
	DayCustomers  []string  `json:"day_customers"`
	DayNew        int       `json:"day_new"` // of DayCustomers, how many were new
	DaySessions   int       `json:"day_sessions"`
	DayDenials    int       `json:"day_denials"`
	DayBytesTotal float64   `json:"day_bytes_total"`
}

func newBaseline() *Baseline {
	return &Baseline{
		Version:    baselineVersion,
		Addresses:  map[string]time.Time{},
		Networks:   map[string]time.Time{},
		UserAgents: map[string]time.Time{},
		Customers:  map[string]time.Time{},
	}
}

// ErrNoBaseline is returned by BaselineStore.Load for an agent with none.
var ErrNoBaseline = errors.New("detect: no baseline stored")

// BaselineStore persists one opaque JSON blob per agent, so any database can
// hold baselines in one table (agent TEXT PRIMARY KEY, blob BLOB). Load
// returns ErrNoBaseline for an unknown agent. Calls come from the detector's
// goroutine, one at a time; they should return within a second.
type BaselineStore interface {
	Load(ctx context.Context, agent string) ([]byte, error)
	Save(ctx context.Context, agent string, blob []byte) error
}

// MaxBaselineBytes bounds a blob DecodeBaseline accepts.
const MaxBaselineBytes = 1 << 20

// EncodeBaseline returns b's blob.
func EncodeBaseline(b *Baseline) ([]byte, error) {
	return json.Marshal(b)
}

// DecodeBaseline parses a blob from a store, which it does not trust: it
// bounds sizes, drops non-finite samples and fills missing maps.
func DecodeBaseline(blob []byte) (*Baseline, error) {
	if len(blob) > MaxBaselineBytes {
		return nil, fmt.Errorf("detect: baseline is %d bytes, limit %d", len(blob), MaxBaselineBytes)
	}
	b := newBaseline()
	if err := json.Unmarshal(blob, b); err != nil {
		return nil, fmt.Errorf("detect: baseline: %w", err)
	}
	if b.Version != baselineVersion {
		return nil, fmt.Errorf("detect: baseline version %d, want %d", b.Version, baselineVersion)
	}
	for _, s := range []*Series{&b.HourlyRate, &b.DailyCustomers, &b.DenialRate, &b.BytesOut} {
		vals := s.Vals
		*s = Series{}
		if len(vals) > seriesCap {
			vals = vals[len(vals)-seriesCap:]
		}
		for _, v := range vals {
			s.Add(v)
		}
	}
	for i, h := range b.Hours {
		if math.IsNaN(h) || math.IsInf(h, 0) || h < 0 {
			b.Hours[i] = 0
		}
	}
	if b.Addresses == nil {
		b.Addresses = map[string]time.Time{}
	}
	if b.Networks == nil {
		b.Networks = map[string]time.Time{}
	}
	if b.UserAgents == nil {
		b.UserAgents = map[string]time.Time{}
	}
	if b.Customers == nil {
		b.Customers = map[string]time.Time{}
	}
	trim(b.Addresses, maxAddresses)
	trim(b.Networks, maxAddresses)
	trim(b.UserAgents, maxAddresses)
	trim(b.Customers, maxCustomers)
	if len(b.DayCustomers) > maxCustomers {
		b.DayCustomers = b.DayCustomers[:maxCustomers]
	}
	return b, nil
}

// see records k as seen at t in a capped set and reports whether it was new.
func see(m map[string]time.Time, k string, t time.Time, limit int) bool {
	last, ok := m[k]
	if !ok || t.After(last) {
		m[k] = t
	}
	trim(m, limit)
	return !ok
}

// trim drops the least recently seen entries beyond limit.
func trim(m map[string]time.Time, limit int) {
	for len(m) > limit {
		var oldK string
		var oldT time.Time
		first := true
		for k, t := range m {
			if first || t.Before(oldT) || (t.Equal(oldT) && k < oldK) {
				oldK, oldT, first = k, t, false
			}
		}
		delete(m, oldK)
	}
}

// MemStore is an in-memory BaselineStore with a JSON snapshot.
type MemStore struct {
	mu    sync.Mutex
	blobs map[string][]byte // guarded by mu
}

var _ BaselineStore = (*MemStore)(nil)

// NewMemStore returns an empty store.
func NewMemStore() *MemStore { return &MemStore{blobs: map[string][]byte{}} }

// Load implements BaselineStore.
func (m *MemStore) Load(_ context.Context, agent string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[agent]
	if !ok {
		return nil, ErrNoBaseline
	}
	return slices.Clone(b), nil
}

// Save implements BaselineStore.
func (m *MemStore) Save(_ context.Context, agent string, blob []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.blobs[agent] = slices.Clone(blob)
	return nil
}

// Agents lists the agents with a stored baseline, sorted.
func (m *MemStore) Agents() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.blobs))
	for a := range m.blobs {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// WriteSnapshot writes every baseline as one JSON object {agent: baseline}.
func (m *MemStore) WriteSnapshot(w io.Writer) error {
	m.mu.Lock()
	snap := make(map[string]json.RawMessage, len(m.blobs))
	for a, b := range m.blobs {
		snap[a] = json.RawMessage(b)
	}
	m.mu.Unlock()
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	if err := enc.Encode(snap); err != nil {
		return fmt.Errorf("detect: snapshot: %w", err)
	}
	return nil
}

// ReadSnapshot replaces the store's contents with a snapshot from
// WriteSnapshot. Each baseline is checked with DecodeBaseline.
func (m *MemStore) ReadSnapshot(r io.Reader) error {
	var snap map[string]json.RawMessage
	if err := json.NewDecoder(io.LimitReader(r, 256<<20)).Decode(&snap); err != nil {
		return fmt.Errorf("detect: snapshot: %w", err)
	}
	blobs := make(map[string][]byte, len(snap))
	for a, raw := range snap {
		if _, err := DecodeBaseline(raw); err != nil {
			return fmt.Errorf("detect: snapshot: agent %q: %w", a, err)
		}
		blobs[a] = slices.Clone([]byte(raw))
	}
	m.mu.Lock()
	m.blobs = blobs
	m.mu.Unlock()
	return nil
}
