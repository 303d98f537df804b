package detect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"supportgate/gateway/audit"
)

// Rules are the thresholds of the rules. A zero field takes its value from
// DefaultRules.
type Rules struct {
	Cooldown time.Duration // fold repeats of one agent and kind within this into one alert

	BurstWindow       time.Duration // session_burst: window of sessions counted
	BurstMin          int           // session_burst: never alert below this many in BurstWindow
	BurstSpread       float64       // session_burst: threshold = median + BurstSpread×spread of hourly rate
	DefaultHourlyRate float64       // session_burst: median hourly rate assumed for a new agent

	CustomersMin          int     // many_customers: never alert below this many distinct customers in a day
	CustomersSpread       float64 // many_customers: threshold = median + CustomersSpread×spread
	DefaultDailyCustomers float64 // many_customers: median assumed for a new agent

	OffHoursShare float64 // unusual_login: an hour of day with less than this share of activity is off-hours
	LearnLogins   int     // unusual_login: logins before addresses are judged
	LearnActivity int     // unusual_login: activity events before hours are judged

	DenialWindow time.Duration // denials: window
	DenialMin    int           // denials: never alert below this many in DenialWindow

	BulkMinBytes      int64   // bulk_output: never alert below this many bytes out of one session
	BulkSpread        float64 // bulk_output: threshold = 2^(median + BulkSpread×spread) of log2 bytes
	DefaultBulkBytes  int64   // bulk_output: median bytes per session assumed for a new agent
	BulkCriticalBytes int64   // bulk_output: at or above this and the threshold, the alert is critical

	AuthWindow  time.Duration // mfa_failures and password_guessing: window
	MFAMin      int           // mfa_failures: second-factor failures in AuthWindow
	PasswordMin int           // password_guessing: password failures in AuthWindow

	ConcurrentWindow time.Duration // concurrent_addresses: activity from two networks within this
}

// DefaultRules are the thresholds used for zero fields of Config.Rules. They
// are tuned on the scenario set (see package scenario) to at most one false
// alert per agent-week.
var DefaultRules = Rules{
	Cooldown:              time.Hour,
	BurstWindow:           time.Hour,
	BurstMin:              8,
	BurstSpread:           5,
	DefaultHourlyRate:     1.5,
	CustomersMin:          14,
	CustomersSpread:       5,
	DefaultDailyCustomers: 6,
	OffHoursShare:         0.01,
	LearnLogins:           10,
	LearnActivity:         30,
	DenialWindow:          time.Hour,
	DenialMin:             4,
	BulkMinBytes:          512 << 20,
	BulkSpread:            4,
	DefaultBulkBytes:      4 << 20,
	BulkCriticalBytes:     2 << 30,
	AuthWindow:            15 * time.Minute,
	MFAMin:                4,
	PasswordMin:           10,
	ConcurrentWindow:      10 * time.Minute,
}

func (r Rules) withDefaults() Rules {
	d := DefaultRules
	pick := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	pickI := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	pickF := func(v *float64, def float64) {
		if *v <= 0 {
			*v = def
		}
	}
	pickB := func(v *int64, def int64) {
		if *v <= 0 {
			*v = def
		}
	}
	pick(&r.Cooldown, d.Cooldown)
	pick(&r.BurstWindow, d.BurstWindow)
	pickI(&r.BurstMin, d.BurstMin)
	pickF(&r.BurstSpread, d.BurstSpread)
	pickF(&r.DefaultHourlyRate, d.DefaultHourlyRate)
	pickI(&r.CustomersMin, d.CustomersMin)
	pickF(&r.CustomersSpread, d.CustomersSpread)
	pickF(&r.DefaultDailyCustomers, d.DefaultDailyCustomers)
	pickF(&r.OffHoursShare, d.OffHoursShare)
	pickI(&r.LearnLogins, d.LearnLogins)
	pickI(&r.LearnActivity, d.LearnActivity)
	pick(&r.DenialWindow, d.DenialWindow)
	pickI(&r.DenialMin, d.DenialMin)
	pickB(&r.BulkMinBytes, d.BulkMinBytes)
	pickF(&r.BulkSpread, d.BulkSpread)
	pickB(&r.DefaultBulkBytes, d.DefaultBulkBytes)
	pickB(&r.BulkCriticalBytes, d.BulkCriticalBytes)
	pick(&r.AuthWindow, d.AuthWindow)
	pickI(&r.MFAMin, d.MFAMin)
	pickI(&r.PasswordMin, d.PasswordMin)
	pick(&r.ConcurrentWindow, d.ConcurrentWindow)
	return r
}

// Sink delivers alerts somewhere else. Send must not block; Close stops
// delivery and returns after the sink's goroutines have stopped.
type Sink interface {
	Send(Alert)
	Close() error
}

// Config configures a Detector. Every field is optional.
type Config struct {
	Now      func() time.Time // clock for Alert.Raised and Updated; nil means time.Now
	Log      *slog.Logger     // nil means discard
	Location *time.Location   // zone of working hours and days; nil means UTC
	Rules    Rules            // zero fields take DefaultRules

	// Baselines persists baselines; nil means an in-memory store. Loaded
	// when an agent is first seen; saved every SaveEvery records processed
	// (default 1024) and on Close.
	Baselines BaselineStore
	SaveEvery int

	QueueSize int // records waiting for the detector; default 4096. Observe drops beyond it.
	MaxAlerts int // alerts kept; default 10000, oldest resolved (then oldest) go first

	// Sinks receive every new alert and every alert whose severity rises.
	// The Detector owns them: Close closes them.
	Sinks []Sink

	// OnAlert, if set, is called with each new or escalated alert from the
	// detector's goroutine; it must not block (the gateway records an
	// audit event from it: Observe never blocks, so that is safe).
	OnAlert func(Alert)

	// Alerts, if set, keeps alerts across restarts: loaded by New, saved
	// after every new, escalated, acknowledged or resolved alert.
	Alerts AlertStore

	// OnCritical, if set, is the auto-lock policy hook: called with the
	// agent's name, from the detector's goroutine, when an alert about
	// them becomes critical. It must not block for long.
	OnCritical func(agent string)
}

// Stats are the Detector's counters, for /metrics.
type Stats struct {
	Observed  uint64           // records handed to Observe or ObserveWait and queued
	Dropped   uint64           // records Observe dropped because the queue was full or closed
	Processed uint64           // records the rules have seen
	Alerts    map[Severity]int // alerts raised, by severity at raising
	Open      int              // alerts now open
	Agents    int              // agents with a baseline in memory
}

type item struct {
	rec   audit.Record
	flush chan struct{} // non-nil: a Flush marker
}

// Detector is the running detector. Its methods are safe for concurrent use.
type Detector struct {
	cfg   Config
	rules Rules
	log   *slog.Logger
	now   func() time.Time
	loc   *time.Location
	store BaselineStore

	queue     chan item
	closing   chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error

	observed, dropped, processed atomic.Uint64

	saveMu sync.Mutex // orders alert snapshots so an older one never overwrites a newer

	mu     sync.Mutex
	alerts []*Alert          // guarded by mu; in raising order
	byID   map[string]*Alert // guarded by mu
	nextID int               // guarded by mu
	raised map[Severity]int  // guarded by mu
	nAgent int               // guarded by mu

	// Owned by the worker goroutine.
	agents   map[string]*agentState
	folds    map[string]*fold
	custNets map[string]*customerNets // customer → networks approvals came from
}

// New starts a Detector; call Close to stop it.
func New(cfg Config) (*Detector, error) {
	if cfg.QueueSize < 0 || cfg.MaxAlerts < 0 || cfg.SaveEvery < 0 {
		return nil, errors.New("detect: QueueSize, MaxAlerts and SaveEvery must not be negative")
	}
	if cfg.QueueSize == 0 {
		cfg.QueueSize = 4096
	}
	if cfg.MaxAlerts == 0 {
		cfg.MaxAlerts = 10000
	}
	if cfg.SaveEvery == 0 {
		cfg.SaveEvery = 1024
	}
	d := &Detector{
		cfg: cfg, rules: cfg.Rules.withDefaults(), log: cfg.Log, now: cfg.Now, loc: cfg.Location, store: cfg.Baselines,
		queue: make(chan item, cfg.QueueSize), closing: make(chan struct{}), done: make(chan struct{}),
		byID: map[string]*Alert{}, raised: map[Severity]int{},
		agents: map[string]*agentState{}, folds: map[string]*fold{}, custNets: map[string]*customerNets{},
	}
	if d.log == nil {
		d.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.loc == nil {
		d.loc = time.UTC
	}
	if d.store == nil {
		d.store = NewMemStore()
	}
	if err := d.loadAlerts(); err != nil {
		return nil, err
	}
	go d.run()
	return d, nil
}

// Observe queues a stored audit record for the rules and returns at once;
// if the queue is full or the Detector is closed the record is dropped and
// counted in Stats.Dropped. It is meant for gateway.Config.OnAudit.
func (d *Detector) Observe(rec audit.Record) {
	select {
	case <-d.closing:
		d.dropped.Add(1)
		return
	default:
	}
	select {
	case d.queue <- item{rec: rec}:
		d.observed.Add(1)
	default:
		d.dropped.Add(1)
	}
}

// ErrClosed is returned by ObserveWait and Flush after Close.
var ErrClosed = errors.New("detect: detector is closed")

// ObserveWait queues rec, waiting for room; for replaying a log, where no
// record may be dropped.
func (d *Detector) ObserveWait(ctx context.Context, rec audit.Record) error {
	select {
	case <-d.closing:
		return ErrClosed
	default:
	}
	select {
	case d.queue <- item{rec: rec}:
		d.observed.Add(1)
		return nil
	case <-d.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Flush returns once every record queued before it has been processed.
func (d *Detector) Flush(ctx context.Context) error {
	ch := make(chan struct{})
	select {
	case <-d.closing:
		return ErrClosed
	default:
	}
	select {
	case d.queue <- item{flush: ch}:
	case <-d.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ch:
		return nil
	case <-d.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close processes what is queued, saves baselines, closes the sinks and
// returns after the detector's goroutine has stopped. It is idempotent.
func (d *Detector) Close() error {
	d.closeOnce.Do(func() {
		close(d.closing)
		<-d.done
		var errs []error
		if err := d.saveAll(); err != nil {
			errs = append(errs, err)
		}
		for _, s := range d.cfg.Sinks {
			if err := s.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		d.closeErr = errors.Join(errs...)
	})
	return d.closeErr
}

func (d *Detector) run() {
	defer close(d.done)
	for {
		select {
		case it := <-d.queue:
			d.handle(it)
		case <-d.closing:
			for {
				select {
				case it := <-d.queue:
					d.handle(it)
				default:
					return
				}
			}
		}
	}
}

func (d *Detector) handle(it item) {
	if it.flush != nil {
		close(it.flush)
		return
	}
	d.process(it.rec)
	if d.processed.Add(1)%uint64(d.cfg.SaveEvery) == 0 {
		if err := d.saveAll(); err != nil {
			d.log.Warn("saving baselines", "err", err)
		}
	}
}

// saveAll stores every changed baseline. It runs on the worker goroutine or
// after it has stopped.
func (d *Detector) saveAll() error {
	names := make([]string, 0, len(d.agents))
	for n, a := range d.agents {
		if a.dirty {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var errs []error
	for _, n := range names {
		a := d.agents[n]
		blob, err := EncodeBaseline(a.base)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err = d.store.Save(ctx, n, blob)
			cancel()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("detect: save baseline of %q: %w", n, err))
			continue
		}
		a.dirty = false
	}
	return errors.Join(errs...)
}

// Stats returns the counters.
func (d *Detector) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := Stats{Observed: d.observed.Load(), Dropped: d.dropped.Load(), Processed: d.processed.Load(),
		Alerts: map[Severity]int{}, Agents: d.nAgent}
	for k, v := range d.raised {
		s.Alerts[k] = v
	}
	for _, a := range d.alerts {
		if a.State == Open {
			s.Open++
		}
	}
	return s
}

// Alerts returns copies of the alerts kept, oldest first.
func (d *Detector) Alerts() []Alert {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Alert, len(d.alerts))
	for i, a := range d.alerts {
		out[i] = a.clone()
	}
	return out
}

// Alert returns one alert by ID.
func (d *Detector) Alert(id string) (Alert, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	a, ok := d.byID[id]
	if !ok {
		return Alert{}, false
	}
	return a.clone(), true
}

// ErrNoAlert is returned by Ack and Resolve for an unknown alert ID.
var ErrNoAlert = errors.New("detect: no such alert")

// ErrResolved is returned, wrapped, by Resolve for an alert resolved
// already.
var ErrResolved = errors.New("alert is resolved already")

// MaxNoteBytes bounds an incident note, so the note fits an audit detail value.
const MaxNoteBytes = audit.MaxDetailValBytes

// Ack marks an alert acknowledged by a user, with an optional note that
// replaces the previous one if non-empty.
func (d *Detector) Ack(id, by, note string) (Alert, error) {
	return d.setState(id, by, note, Acknowledged)
}

// Resolve marks an alert resolved by a user, with an optional note.
func (d *Detector) Resolve(id, by, note string) (Alert, error) {
	return d.setState(id, by, note, Resolved)
}

func (d *Detector) setState(id, by, note string, st State) (Alert, error) {
	if len(note) > MaxNoteBytes {
		return Alert{}, fmt.Errorf("detect: note is %d bytes, limit %d", len(note), MaxNoteBytes)
	}
	d.mu.Lock()
	a, ok := d.byID[id]
	if !ok {
		d.mu.Unlock()
		return Alert{}, fmt.Errorf("detect: alert %q: %w", id, ErrNoAlert)
	}
	if a.State == Resolved && st == Acknowledged {
		out := a.clone()
		d.mu.Unlock()
		return out, nil
	}
	if a.State == Resolved && st == Resolved {
		// Keep the first resolver and their note: a stale page or a
		// second supervisor must not rewrite them.
		d.mu.Unlock()
		return Alert{}, fmt.Errorf("detect: alert %q was resolved by %s already: %w", id, a.By, ErrResolved)
	}
	a.State, a.By, a.Updated = st, by, d.now()
	if note != "" {
		a.Note = note
	}
	out := a.clone()
	d.mu.Unlock()
	d.saveAlerts()
	return out, nil
}
