package session

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Config configures a Broker.
type Config struct {
	Store  Store        // required
	Policy Policy       // zero fields take defaults
	Clock  Clock        // nil means the wall clock; wrapped in a SteadyClock unless it is one
	Rand   io.Reader    // nil means crypto/rand
	Logger *slog.Logger // nil discards
	// OnEvent is called, in the goroutine that made the change, after every
	// stored state change. The gateway turns events into audit records and
	// live updates. It must not call back into the Broker synchronously.
	OnEvent func(Event)
}

// Event reports one change of a session.
type Event struct {
	Type    string // session.created, consent.viewed, session.approved, ...
	Time    time.Time
	Actor   Actor
	Session *Session // the session after the change (a copy)
	Detail  map[string]string
	// Stored is true when the event went to the Store together with the
	// change it reports (Change.Event); it is false for events that change
	// nothing stored, such as consent.refused.
	Stored bool
}

// Actor is who asked for a change.
type Actor struct {
	Name   string // user name, "customer" or "system"
	Role   string // agent, supervisor, auditor, admin, customer, system
	Remote string // client address, if any
}

// System is the actor of timer-driven changes.
var System = Actor{Name: "system", Role: "system"}

// Broker owns session state. It alone changes it, holds a timer for every
// open session, and gives each session a context that is cancelled the
// moment the session ends, which every channel of the session selects on.
type Broker struct {
	store   Store
	policy  Policy
	clock   *SteadyClock
	rand    io.Reader
	log     *slog.Logger
	onEvent func(Event)

	mu        sync.Mutex // guards the fields below
	entries   map[string]*entry
	byToken   map[[32]byte]*entry
	openCount map[string]int // open sessions per agent
	sched     schedule
	timer     Timer
	timerAt   time.Time
	timerGen  uint64
	started   bool
	closed    bool

	unsaved    map[string]Change // ends not stored yet, by session id (unsaved.go)
	retryTimer Timer             // the pending retry of unsaved, if any
	retryDelay time.Duration     // the delay before the next retry
	// unsavedFinal is set once Close has made its last attempt.
	unsavedFinal bool

	sweeps sync.WaitGroup // in-flight timer callbacks
}

// entry is the broker's live view of one open session.
type entry struct {
	mu     sync.Mutex // guards s; held across a transition to serialise it
	s      *Session
	ctx    context.Context
	cancel context.CancelCauseFunc // cause: *EndedError, or ErrClosed
}

// NewBroker returns a Broker; call Start to take over stored sessions.
func NewBroker(cfg Config) (*Broker, error) {
	if cfg.Store == nil {
		return nil, errors.New("session: Config.Store is required")
	}
	pol, err := cfg.Policy.WithDefaults()
	if err != nil {
		return nil, err
	}
	b := &Broker{
		store:     cfg.Store,
		policy:    pol,
		rand:      cfg.Rand,
		log:       cfg.Logger,
		onEvent:   cfg.OnEvent,
		entries:   make(map[string]*entry),
		byToken:   make(map[[32]byte]*entry),
		openCount: make(map[string]int),
	}
	b.clock = Steady(cfg.Clock)
	if b.rand == nil {
		b.rand = rand.Reader
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.onEvent == nil {
		b.onEvent = func(Event) {}
	}
	return b, nil
}

// OpenCount returns how many sessions are requested or active.
func (b *Broker) OpenCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.entries)
}

// Policy returns the policy in force, defaults filled.
func (b *Broker) Policy() Policy { return b.policy }

// Start loads every open session from the store and arms its timers, so
// that sessions active before a restart still end on time. Sessions whose
// deadline passed while the gateway was down end at once.
//
// The broker's clock is first raised to the newest time the store holds
// (HighWaterStore, or else the open sessions' own times): were the wall
// clock set back while the gateway was down, deadlines would otherwise
// gain the difference. They can still gain the downtime, which a clock
// that went back cannot measure.
func (b *Broker) Start(ctx context.Context) error {
	open, err := b.store.OpenSessions(ctx)
	if err != nil {
		return fmt.Errorf("session: loading open sessions: %w", err)
	}
	var floor time.Time
	if hw, ok := b.store.(HighWaterStore); ok {
		if floor, err = hw.HighWater(ctx); err != nil {
			return fmt.Errorf("session: reading the newest stored time: %w", err)
		}
	}
	for _, s := range open {
		floor = latest(floor, s.CreatedAt, s.ApprovedAt, s.LastActivity)
		if s.Extension != nil {
			floor = latest(floor, s.Extension.RequestedAt)
		}
	}
	if ahead := b.clock.Raise(floor); ahead > 0 {
		b.log.Warn("wall clock is behind the newest stored time; deadlines run from that time", "newest", floor, "behind", ahead)
	}
	now := b.clock.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	b.started = true
	for _, s := range open {
		if s.State == Active && s.LastActivity.Before(now) {
			// Activity is not persisted on every touch; count the
			// restart as activity rather than end a busy session idle.
			s.LastActivity = now
		}
		b.addLocked(s)
	}
	b.armLocked()
	return nil
}

// Close stops the timers and cancels every session context, which closes
// the channels this process carries. Session state is left as stored, so a
// restarted broker resumes the same time boxes. Close is idempotent.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	if b.timer != nil && b.timer.Stop() {
		b.sweeps.Done()
	}
	b.timer = nil
	if b.retryTimer != nil && b.retryTimer.Stop() {
		b.sweeps.Done()
	}
	b.retryTimer = nil
	for _, e := range b.entries {
		e.cancel(ErrClosed)
	}
	b.mu.Unlock()
	b.sweeps.Wait()
	b.closeUnsaved()
	return nil
}

// latest returns the latest of ts.
func latest(ts ...time.Time) time.Time {
	var l time.Time
	for _, t := range ts {
		if t.After(l) {
			l = t
		}
	}
	return l
}

// addLocked registers an open session and schedules its deadline.
func (b *Broker) addLocked(s *Session) *entry {
	ctx, cancel := context.WithCancelCause(context.Background())
	e := &entry{s: s, ctx: ctx, cancel: cancel}
	b.entries[s.ID] = e
	b.byToken[s.TokenHash] = e
	b.openCount[s.Agent]++
	b.sched.add(s.deadline(), s.ID)
	return e
}

// removeLocked forgets an ended session.
func (b *Broker) removeLocked(s *Session) {
	if _, ok := b.entries[s.ID]; !ok {
		return
	}
	delete(b.entries, s.ID)
	delete(b.byToken, s.TokenHash)
	if b.openCount[s.Agent]--; b.openCount[s.Agent] <= 0 {
		delete(b.openCount, s.Agent)
	}
}

// NewRequest is what an agent asks for.
type NewRequest struct {
	Agent     string
	AgentName string
	Team      string
	Customer  string
	Reason    string
	Scopes    Scopes
	Duration  time.Duration
}

// Limits on free text in a request.
const (
	MaxCustomerLen = 200
	MaxReasonLen   = 500
)

// Create records a new session awaiting consent and returns it with the
// consent token, which is never stored and cannot be recovered later.
func (b *Broker) Create(ctx context.Context, by Actor, req NewRequest) (*Session, string, error) {
	if err := checkText("customer", req.Customer, 1, MaxCustomerLen); err != nil {
		return nil, "", err
	}
	if err := checkText("reason", req.Reason, 0, MaxReasonLen); err != nil {
		return nil, "", err
	}
	if req.Agent == "" {
		return nil, "", fmt.Errorf("%w: agent is required", ErrBadRequest)
	}
	if len(req.Scopes) == 0 {
		return nil, "", fmt.Errorf("%w: no scopes", ErrBadScope)
	}
	if b.policy.Allowed != nil && !req.Scopes.Within(b.policy.Allowed) {
		return nil, "", fmt.Errorf("%w: policy allows only %s", ErrScopeNotAllowed, b.policy.Allowed)
	}
	if err := b.policy.checkDuration(req.Duration); err != nil {
		return nil, "", err
	}
	id, err := newID(b.rand)
	if err != nil {
		return nil, "", err
	}
	token, th, err := newSecret(b.rand)
	if err != nil {
		return nil, "", err
	}
	code, err := newCode(b.rand)
	if err != nil {
		return nil, "", err
	}
	now := b.clock.Now()
	s := &Session{
		ID: id, Agent: req.Agent, AgentName: req.AgentName, Team: req.Team,
		Customer: req.Customer, Reason: req.Reason,
		Requested: cloneScopes(req.Scopes), Duration: req.Duration,
		State: Requested, CreatedAt: now, ConsentExpiresAt: now.Add(b.policy.ConsentTTL),
		IdleTimeout: max(b.policy.IdleTimeout, 0), VerificationCode: code, TokenHash: th, Version: 1,
	}

	// Reserve the agent's slot before the store call so concurrent creates
	// cannot overshoot the per-agent limit.
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, "", ErrClosed
	}
	if b.openCount[req.Agent] >= b.policy.MaxOpenPerAgent {
		b.mu.Unlock()
		return nil, "", fmt.Errorf("%w (limit %d)", ErrTooMany, b.policy.MaxOpenPerAgent)
	}
	b.openCount[req.Agent]++
	b.mu.Unlock()

	ev := b.event("session.created", by, map[string]string{"scopes": s.Requested.String(), "duration": s.Duration.String()})
	err = b.store.CreateSession(ctx, Change{Session: s.Clone(), Event: ev})
	b.mu.Lock()
	b.openCount[req.Agent]--
	if err == nil && !b.closed {
		b.addLocked(s)
		b.armLocked()
	}
	b.mu.Unlock()
	if err != nil {
		return nil, "", fmt.Errorf("session: storing new session: %w", err)
	}
	b.publish(ev, s)
	return s.Clone(), token, nil
}

// Get returns a copy of the session.
func (b *Broker) Get(ctx context.Context, id string) (*Session, error) {
	if e := b.lookup(id); e != nil {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.s.Clone(), nil
	}
	if s, ok := b.unsavedEnd(id); ok {
		return s, nil
	}
	return b.store.GetSession(ctx, id)
}

// List returns stored sessions matching f, with open sessions as the
// broker currently sees them.
func (b *Broker) List(ctx context.Context, f Filter) ([]*Session, error) {
	ss, err := b.store.ListSessions(ctx, f)
	if err != nil {
		return nil, err
	}
	for i, s := range ss {
		if e := b.lookup(s.ID); e != nil {
			e.mu.Lock()
			ss[i] = e.s.Clone()
			e.mu.Unlock()
		} else if u, ok := b.unsavedEnd(s.ID); ok {
			ss[i] = u
		}
	}
	return ss, nil
}

func (b *Broker) lookup(id string) *entry {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.entries[id]
}

// Context returns the context of an active session, cancelled when it
// ends. Transports hold it for every channel they open for the session.
func (b *Broker) Context(id string) (context.Context, error) {
	e := b.lookup(id)
	if e == nil {
		return nil, ErrEnded
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.s.State != Active {
		return nil, ErrNotActive
	}
	return e.ctx, nil
}

// Need is what a transport is about to do in a session.
type Need struct {
	Agent string // the authenticated user acting as the session's agent
	Kind  Kind
	Port  uint16 // for Tunnel
}

// Authorize reports whether the session is active, belongs to need.Agent
// and grants need's scope, and returns the session context that the
// transport's channel must select on. A session found past its deadline is
// ended on the spot, so the answer never depends on timer latency.
func (b *Broker) Authorize(ctx context.Context, id string, need Need) (context.Context, *Session, error) {
	e := b.lookup(id)
	if e == nil {
		if _, err := b.store.GetSession(ctx, id); err != nil {
			return nil, nil, err
		}
		return nil, nil, ErrEnded
	}
	e.mu.Lock()
	s := e.s
	switch {
	case s.State != Active:
		e.mu.Unlock()
		return nil, nil, ErrNotActive
	case !b.clock.Now().Before(s.deadline()):
		e.mu.Unlock()
		b.sweep()
		return nil, nil, ErrEnded
	case need.Agent != s.Agent:
		e.mu.Unlock()
		return nil, nil, ErrNotFound
	case !s.Scopes.Has(need.Kind), need.Kind == Tunnel && !s.Scopes.AllowsPort(need.Port):
		e.mu.Unlock()
		return nil, nil, ErrScopeNotAllowed
	}
	out := s.Clone()
	c := e.ctx
	e.mu.Unlock()
	return c, out, nil
}

// Touch records activity in an active session, pushing its idle deadline.
// It is cheap: nothing is stored.
func (b *Broker) Touch(id string) {
	if e := b.lookup(id); e != nil {
		e.mu.Lock()
		if e.s.State == Active {
			e.s.LastActivity = b.clock.Now()
		}
		e.mu.Unlock()
	}
}

// change runs a transition of one open session: mutate edits a copy of the
// session (and returns an error to refuse), which is stored and only then
// made current. If the transition ends the session its context is
// cancelled first, so channels close before anything else happens.
func (b *Broker) change(ctx context.Context, e *entry, typ string, by Actor, detail map[string]string, mutate func(next *Session) error) (*Session, error) {
	e.mu.Lock()
	if e.s.State == Ended {
		e.mu.Unlock()
		return nil, ErrEnded
	}
	next := e.s.Clone()
	if err := mutate(next); err != nil {
		e.mu.Unlock()
		return nil, err
	}
	next.Version++
	if next.State == Ended {
		e.cancel(&EndedError{Reason: next.EndReason})
	}
	ev := b.event(typ, by, detail)
	c := Change{Session: next.Clone(), Event: ev, Before: e.s}
	err := b.store.UpdateSessions(ctx, c)
	if err != nil && next.State != Ended {
		e.mu.Unlock()
		return nil, fmt.Errorf("session: storing %s: %w", typ, err)
	}
	e.s = next
	out := next.Clone()
	e.mu.Unlock()

	b.mu.Lock() // after e.mu is released: LockAgent takes b.mu, then e.mu
	if err != nil {
		// The channels are already closed and the session is over here;
		// the end is stored again until it works (unsaved.go), so that
		// no restart brings the session back. It is held in the same
		// step as it leaves the open sessions, so that Get always finds it.
		b.log.Error("session end not stored; retrying", "session", next.ID, "err", err)
		b.keepUnsavedLocked(c)
	}
	if out.State == Ended {
		b.removeLocked(out)
	} else {
		b.sched.add(out.deadline(), out.ID)
		b.armLocked()
	}
	b.mu.Unlock()
	b.publish(ev, out)
	return out, nil
}

// event describes a change about to be stored. Stored is set: the event
// goes to the Store with the change.
func (b *Broker) event(typ string, by Actor, detail map[string]string) Event {
	return Event{Type: typ, Time: b.clock.Now(), Actor: by, Detail: detail, Stored: true}
}

// publish hands ev, about s, to OnEvent.
func (b *Broker) publish(ev Event, s *Session) {
	ev.Session = s.Clone()
	b.onEvent(ev)
}

// emit reports an event that changes nothing stored.
func (b *Broker) emit(typ string, by Actor, s *Session, detail map[string]string) {
	b.publish(Event{Type: typ, Time: b.clock.Now(), Actor: by, Detail: detail}, s)
}

// endState sets the fields of an ended session.
func endState(s *Session, reason EndReason, by string, now time.Time) {
	s.State = Ended
	s.EndReason = reason
	s.EndedBy = by
	s.EndedAt = now
	s.Extension = nil
}

// Revoke ends a session at once, active or still waiting for consent. The
// gateway has already checked that by may do so (the agent, a supervisor of
// the team, an admin). The reason is revoked either way: denied is the
// customer's answer alone, and the audit log, the detector's denial counts
// and the customer's page must not read a request the agent withdrew as
// one the customer refused.
func (b *Broker) Revoke(ctx context.Context, id string, by Actor) (*Session, error) {
	e := b.lookup(id)
	if e == nil {
		return b.endedOrMissing(ctx, id)
	}
	detail := map[string]string{"reason": string(EndRevoked)}
	return b.change(ctx, e, "session.ended", by, detail, func(s *Session) error {
		endState(s, EndRevoked, by.Name, b.clock.Now())
		return nil
	})
}

func (b *Broker) endedOrMissing(ctx context.Context, id string) (*Session, error) {
	if _, err := b.store.GetSession(ctx, id); err != nil {
		return nil, err
	}
	return nil, ErrEnded
}

// LockAgent ends every open session of the agent with reason locked and
// returns how many it ended. The gateway locks the account itself.
func (b *Broker) LockAgent(ctx context.Context, agent string, by Actor) (int, error) {
	return b.EndAgent(ctx, agent, EndLocked, by)
}

// EndAgent ends every open session of the agent at once with reason and
// returns how many it ended: LockAgent's, and revoked when an admin takes
// the agent role away (the agent could then neither use nor end them).
func (b *Broker) EndAgent(ctx context.Context, agent string, reason EndReason, by Actor) (int, error) {
	b.mu.Lock()
	var mine []*entry
	for _, e := range b.entries {
		e.mu.Lock()
		if e.s.Agent == agent {
			mine = append(mine, e)
		}
		e.mu.Unlock()
	}
	b.mu.Unlock()
	n := 0
	var errs []error
	for _, e := range mine {
		_, err := b.change(ctx, e, "session.ended", by, map[string]string{"reason": string(reason)}, func(s *Session) error {
			endState(s, reason, by.Name, b.clock.Now())
			return nil
		})
		switch {
		case err == nil:
			n++
		case !errors.Is(err, ErrEnded):
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// EndStored ends every session the store holds open with reason, by by,
// at the clock's time, and returns them as ended: each is stored as its
// own change with the session.ended event that Revoke and EndAgent store.
// It is for a broker that is not started, over the store of a stopped
// gateway (`supportgate admin clock reset --end-sessions`): it takes over
// no session and arms no timer, and unlike Start it does not raise the
// clock to the stored times, so the sessions end at the time the caller's
// clock reads. A session whose end fails to store stays open and is named
// in the error; the others are ended.
func (b *Broker) EndStored(ctx context.Context, reason EndReason, by Actor) ([]*Session, error) {
	b.mu.Lock()
	started, closed := b.started, b.closed
	b.mu.Unlock()
	switch {
	case closed:
		return nil, ErrClosed
	case started:
		return nil, errors.New("session: EndStored on a started broker: revoke its sessions instead")
	}
	open, err := b.store.OpenSessions(ctx)
	if err != nil {
		return nil, fmt.Errorf("session: loading open sessions: %w", err)
	}
	var ended []*Session
	var errs []error
	for _, s := range open {
		next := s.Clone()
		endState(next, reason, by.Name, b.clock.Now())
		next.Version++
		ev := b.event("session.ended", by, map[string]string{"reason": string(reason)})
		if err := b.store.UpdateSessions(ctx, Change{Session: next.Clone(), Event: ev, Before: s}); err != nil {
			errs = append(errs, fmt.Errorf("session: ending %s: %w", s.ID, err))
			continue
		}
		b.publish(ev, next)
		ended = append(ended, next)
	}
	return ended, errors.Join(errs...)
}

// Errors about extensions. Both match ErrConflict as well, so transports
// that map conflicts (HTTP 409) need no case of their own.
var (
	// ErrExtensionPending refuses a request for more time while an earlier
	// one still awaits the customer. Replacing it would let an agent swap
	// the amount under a customer who is about to say yes to the first.
	ErrExtensionPending error = conflictError("an extension is already awaiting the customer")
	// ErrExtensionChanged refuses a customer's answer that names another
	// request than the one pending now (see ExtensionAnswer).
	ErrExtensionChanged error = conflictError("the extension request has changed")
)

// conflictError is a sentinel that also matches ErrConflict.
type conflictError string

func (e conflictError) Error() string { return string(e) }

// Is makes a conflictError match ErrConflict.
func (e conflictError) Is(target error) bool { return target == ErrConflict }

// RequestExtension asks the customer for more time. The current time box
// runs on unchanged until the customer approves. Only one request may wait
// at a time: another fails with ErrExtensionPending until the customer
// answers, the session ends, or the pending one lapses, unanswered for
// the policy's ConsentTTL; a request then replaces it.
func (b *Broker) RequestExtension(ctx context.Context, id string, by Actor, d time.Duration) (*Session, error) {
	if d <= 0 || d > b.policy.MaxDuration {
		return nil, fmt.Errorf("%w: extension %v is outside (0, %v]", ErrBadDuration, d, b.policy.MaxDuration)
	}
	e := b.lookup(id)
	if e == nil {
		return b.endedOrMissing(ctx, id)
	}
	detail := map[string]string{"by": d.String()}
	return b.change(ctx, e, "extension.requested", by, detail, func(s *Session) error {
		if s.State != Active {
			return ErrNotActive
		}
		now := b.clock.Now()
		if x := s.Extension; x != nil {
			if now.Sub(x.RequestedAt) < b.policy.ConsentTTL {
				return fmt.Errorf("%w: %v asked by %s at %s; the customer must answer it, or it lapses after %v, before more time can be asked",
					ErrExtensionPending, x.By, x.RequestedBy, x.RequestedAt.UTC().Format(time.RFC3339), b.policy.ConsentTTL)
			}
			// Unanswered for as long as a consent link lives: it has
			// lapsed. A page still showing it names it in its answer
			// (ExtensionAnswer), which the new request then refuses.
			detail["replaces"] = x.By.String()
		}
		if total := s.ExpiresAt.Add(d).Sub(s.ApprovedAt); total > HardMaxDuration {
			return fmt.Errorf("%w: the session would last %v, over the hard maximum %v", ErrBadDuration, total.Round(time.Second), HardMaxDuration)
		}
		s.Extension = &Extension{By: d, RequestedBy: by.Name, RequestedAt: now}
		return nil
	})
}

func checkText(field, s string, minLen, maxLen int) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrBadRequest, field)
	}
	n := utf8.RuneCountInString(s)
	if n < minLen || n > maxLen {
		return fmt.Errorf("%w: %s must be %d to %d characters", ErrBadRequest, field, minLen, maxLen)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: %s contains control characters", ErrBadRequest, field)
		}
	}
	return nil
}
