package session_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"supportgate/session"
	"supportgate/session/sessiontest"
)

var t0 = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

type harness struct {
	t      *testing.T
	clock  *sessiontest.Clock
	store  *sessiontest.MemStore
	b      *session.Broker
	mu     sync.Mutex
	events []session.Event
}

func newHarness(t *testing.T, pol session.Policy) *harness {
	t.Helper()
	h := &harness{t: t, clock: sessiontest.NewClock(t0), store: sessiontest.NewMemStore()}
	h.b = h.broker(pol)
	return h
}

func (h *harness) broker(pol session.Policy) *session.Broker {
	h.t.Helper()
	b, err := session.NewBroker(session.Config{Store: h.store, Policy: pol, Clock: h.clock, OnEvent: func(e session.Event) {
		h.mu.Lock()
		h.events = append(h.events, e)
		h.mu.Unlock()
	}})
	if err != nil {
		h.t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { b.Close() })
	return b
}

func (h *harness) eventTypes() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, e := range h.events {
		out = append(out, e.Type)
	}
	return out
}

var agent = session.Actor{Name: "alice", Role: "agent"}
var customer = session.Actor{Name: "customer", Role: "customer"}

func mustScopes(t *testing.T, s string) session.Scopes {
	t.Helper()
	sc, err := session.ParseScopes(s)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// create makes a session for alice and opens its link, returning the token
// and the client key.
func (h *harness) create(scopes string, d time.Duration) (*session.Session, string, string) {
	h.t.Helper()
	s, tok, err := h.b.Create(context.Background(), agent, session.NewRequest{
		Agent: "alice", AgentName: "Alice Example", Customer: "ACME Ltd", Scopes: mustScopes(h.t, scopes), Duration: d,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	_, key, err := h.b.Open(context.Background(), tok, "", customer)
	if err != nil {
		h.t.Fatal(err)
	}
	if key == "" {
		h.t.Fatal("first Open returned no client key")
	}
	return s, tok, key
}

func (h *harness) approve(tok, key, scopes string) *session.Session {
	h.t.Helper()
	s, err := h.b.Approve(context.Background(), tok, key, mustScopes(h.t, scopes), customer)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func (h *harness) get(id string) *session.Session {
	h.t.Helper()
	s, err := h.b.Get(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func TestLifecycleExpires(t *testing.T) {
	h := newHarness(t, session.Policy{})
	s, tok, key := h.create("view,chat,shell", 30*time.Minute)
	if s.State != session.Requested || len(s.VerificationCode) != 6 {
		t.Fatalf("new session: state %s code %q", s.State, s.VerificationCode)
	}
	h.clock.Advance(2 * time.Minute) // the clock starts at approval, not at request
	a := h.approve(tok, key, "view,shell")
	if got, want := a.ExpiresAt, t0.Add(32*time.Minute); !got.Equal(want) {
		t.Fatalf("ExpiresAt %v, want %v", got, want)
	}
	if got, want := a.Scopes.String(), "view,shell"; got != want {
		t.Fatalf("granted %q, want %q", got, want)
	}
	ctx, _, err := h.b.Authorize(context.Background(), s.ID, session.Need{Agent: "alice", Kind: session.Shell})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.b.Authorize(context.Background(), s.ID, session.Need{Agent: "alice", Kind: session.Chat}); !errors.Is(err, session.ErrScopeNotAllowed) {
		t.Fatalf("chat after customer unticked it: got %v, want ErrScopeNotAllowed", err)
	}
	for range 29 {
		h.b.Touch(s.ID)
		h.clock.Advance(time.Minute)
	}
	if ctx.Err() != nil || h.get(s.ID).State != session.Active {
		t.Fatal("session ended before its deadline")
	}
	h.b.Touch(s.ID)
	h.clock.Advance(time.Minute)
	if ctx.Err() == nil {
		t.Fatal("session context not cancelled at the deadline")
	}
	got := h.get(s.ID)
	if got.State != session.Ended || got.EndReason != session.EndExpired || !got.EndedAt.Equal(t0.Add(32*time.Minute)) {
		t.Fatalf("after deadline: %s/%s at %v", got.State, got.EndReason, got.EndedAt)
	}
	stored, _ := h.store.GetSession(context.Background(), s.ID)
	if stored.State != session.Ended {
		t.Fatalf("store says %s after expiry", stored.State)
	}
	if _, _, err := h.b.Authorize(context.Background(), s.ID, session.Need{Agent: "alice", Kind: session.Shell}); !errors.Is(err, session.ErrEnded) {
		t.Fatalf("use after end: got %v, want ErrEnded", err)
	}
	want := "session.created consent.viewed session.approved session.ended"
	if got := strings.Join(h.eventTypes(), " "); got != want {
		t.Fatalf("events %q, want %q", got, want)
	}
}

func TestEndReasons(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		act    func(h *harness, s *session.Session, tok, key string)
		reason session.EndReason
	}{
		{"deny", func(h *harness, s *session.Session, tok, key string) {
			if _, err := h.b.Deny(ctx, tok, key, customer); err != nil {
				t.Fatal(err)
			}
		}, session.EndDenied},
		{"link expiry", func(h *harness, s *session.Session, tok, key string) { h.clock.Advance(15 * time.Minute) }, session.EndLinkExpired},
		{"customer revoke", func(h *harness, s *session.Session, tok, key string) {
			h.approve(tok, key, "view")
			if _, err := h.b.CustomerRevoke(ctx, tok, key, customer); err != nil {
				t.Fatal(err)
			}
		}, session.EndRevoked},
		{"agent revoke", func(h *harness, s *session.Session, tok, key string) {
			h.approve(tok, key, "view")
			if _, err := h.b.Revoke(ctx, s.ID, agent); err != nil {
				t.Fatal(err)
			}
		}, session.EndRevoked},
		{"agent withdraws request", func(h *harness, s *session.Session, tok, key string) {
			// Not denied: that is the customer's answer, and the
			// detector counts denials against the agent.
			if _, err := h.b.Revoke(ctx, s.ID, agent); err != nil {
				t.Fatal(err)
			}
		}, session.EndRevoked},
		{"idle", func(h *harness, s *session.Session, tok, key string) {
			h.approve(tok, key, "view")
			h.clock.Advance(10 * time.Minute)
		}, session.EndIdle},
		{"lock", func(h *harness, s *session.Session, tok, key string) {
			h.approve(tok, key, "view")
			n, err := h.b.LockAgent(ctx, "alice", session.Actor{Name: "root", Role: "admin"})
			if err != nil || n != 1 {
				t.Fatalf("LockAgent = %d, %v; want 1, nil", n, err)
			}
		}, session.EndLocked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, session.Policy{})
			s, tok, key := h.create("view,chat", 30*time.Minute)
			c, _ := h.b.Context(s.ID)
			tt.act(h, s, tok, key)
			got := h.get(s.ID)
			if got.State != session.Ended || got.EndReason != tt.reason {
				t.Fatalf("got %s/%s, want ended/%s", got.State, got.EndReason, tt.reason)
			}
			if c != nil && c.Err() == nil {
				t.Fatal("session context still live")
			}
			if _, err := h.b.Approve(ctx, tok, key, mustScopes(t, "view"), customer); err == nil {
				t.Fatal("approve after end succeeded")
			}
		})
	}
}

func TestConsentLinkBinding(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, session.Policy{})
	s, tok, key := h.create("view,chat", 30*time.Minute)

	if _, _, err := h.b.Open(ctx, tok, "", customer); !errors.Is(err, session.ErrBoundElsewhere) {
		t.Fatalf("second client Open: got %v, want ErrBoundElsewhere", err)
	}
	_, other, _ := h.b.Open(ctx, tok, strings.Repeat("A", session.TokenLen), customer)
	if other != "" {
		t.Fatal("a second client was handed a key")
	}
	if _, err := h.b.Approve(ctx, tok, strings.Repeat("A", session.TokenLen), mustScopes(t, "view"), customer); !errors.Is(err, session.ErrBoundElsewhere) {
		t.Fatalf("approve from other client: got %v, want ErrBoundElsewhere", err)
	}
	if _, _, err := h.b.Open(ctx, tok, key, customer); err != nil {
		t.Fatalf("bound client reopening: %v", err)
	}
	if _, _, err := h.b.Open(ctx, "not-a-token", "", customer); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("malformed token: got %v, want ErrNotFound", err)
	}
	// Widening is refused; approving is possible once.
	if _, err := h.b.Approve(ctx, tok, key, mustScopes(t, "view,shell"), customer); !errors.Is(err, session.ErrScopeNotAllowed) {
		t.Fatalf("widening approve: got %v, want ErrScopeNotAllowed", err)
	}
	h.approve(tok, key, "chat")
	if _, err := h.b.Approve(ctx, tok, key, mustScopes(t, "chat"), customer); !errors.Is(err, session.ErrNotRequested) {
		t.Fatalf("second approve: got %v, want ErrNotRequested", err)
	}
	if got := h.get(s.ID).Scopes.String(); got != "chat" {
		t.Fatalf("granted %q, want chat", got)
	}
}

func TestPolicy(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, session.Policy{MaxDuration: time.Hour, MaxOpenPerAgent: 2, Allowed: mustScopes(t, "view,chat,shell,tunnel:22,80")})
	req := func(scopes string, d time.Duration) error {
		_, _, err := h.b.Create(ctx, agent, session.NewRequest{Agent: "alice", Customer: "c", Scopes: mustScopes(t, scopes), Duration: d})
		return err
	}
	if err := req("view", 61*time.Minute); !errors.Is(err, session.ErrBadDuration) {
		t.Fatalf("over cap: got %v, want ErrBadDuration", err)
	}
	if err := req("view", 30*time.Second); !errors.Is(err, session.ErrBadDuration) {
		t.Fatalf("under min: got %v, want ErrBadDuration", err)
	}
	if err := req("tunnel:443", time.Hour); !errors.Is(err, session.ErrScopeNotAllowed) {
		t.Fatalf("port outside policy: got %v, want ErrScopeNotAllowed", err)
	}
	if _, _, err := h.b.Create(ctx, agent, session.NewRequest{Agent: "alice", Customer: "bad\x1b[2J", Scopes: mustScopes(t, "view"), Duration: time.Hour}); !errors.Is(err, session.ErrBadRequest) {
		t.Fatalf("control characters: got %v, want ErrBadRequest", err)
	}
	for range 2 {
		if err := req("view", time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if err := req("view", time.Hour); !errors.Is(err, session.ErrTooMany) {
		t.Fatalf("third open session: got %v, want ErrTooMany", err)
	}
	if _, err := (session.Policy{MaxDuration: 9 * time.Hour}).WithDefaults(); err == nil {
		t.Fatal("policy over the hard maximum accepted")
	}
}

func TestExtensionNeedsConsent(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, session.Policy{IdleTimeout: -1})
	s, tok, key := h.create("view", 30*time.Minute)
	h.approve(tok, key, "view")
	if _, err := h.b.RequestExtension(ctx, s.ID, agent, 15*time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := h.get(s.ID).ExpiresAt; !got.Equal(t0.Add(30 * time.Minute)) {
		t.Fatalf("extension took effect before consent: expires %v", got)
	}
	if _, err := h.b.DecideExtension(ctx, tok, key, session.ExtensionAnswer{Approve: true}, customer); err != nil {
		t.Fatal(err)
	}
	if _, err := h.b.DecideExtension(ctx, tok, key, session.ExtensionAnswer{Approve: true}, customer); !errors.Is(err, session.ErrNoExtension) {
		t.Fatalf("second decision: got %v, want ErrNoExtension", err)
	}
	h.clock.Advance(44 * time.Minute)
	if h.get(s.ID).State != session.Active {
		t.Fatal("extended session ended early")
	}
	h.clock.Advance(time.Minute)
	if got := h.get(s.ID); got.EndReason != session.EndExpired {
		t.Fatalf("got %s, want expired at the extended deadline", got.EndReason)
	}
}

func TestRestartResumesTimers(t *testing.T) {
	h := newHarness(t, session.Policy{IdleTimeout: -1})
	s1, tok1, key1 := h.create("view", 10*time.Minute)
	h.approve(tok1, key1, "view")
	s2, _, _ := h.create("chat", 10*time.Minute) // stays requested
	s3, tok3, key3 := h.create("view", 30*time.Minute)
	h.approve(tok3, key3, "view")
	h.b.Close()

	// The gateway is down for 16 minutes: s1's box and s2's link pass.
	h.clock.Advance(16 * time.Minute)
	h.b = h.broker(session.Policy{IdleTimeout: -1})
	h.clock.Advance(0)
	for _, c := range []struct {
		id   string
		want session.EndReason
	}{{s1.ID, session.EndExpired}, {s2.ID, session.EndLinkExpired}} {
		if got := h.get(c.id); got.State != session.Ended || got.EndReason != c.want {
			t.Fatalf("%s after restart: %s/%s, want ended/%s", c.id, got.State, got.EndReason, c.want)
		}
	}
	if _, err := h.b.Approve(context.Background(), tok3, key3, mustScopes(t, "view"), customer); !errors.Is(err, session.ErrNotRequested) {
		t.Fatalf("spent token after restart: got %v, want ErrNotRequested", err)
	}
	h.clock.Advance(13*time.Minute + 59*time.Second)
	if h.get(s3.ID).State != session.Active {
		t.Fatal("s3 ended early after restart")
	}
	h.clock.Advance(time.Second)
	if got := h.get(s3.ID); got.EndReason != session.EndExpired || !got.EndedAt.Equal(t0.Add(30*time.Minute)) {
		t.Fatalf("s3: %s at %v, want expired at %v", got.EndReason, got.EndedAt, t0.Add(30*time.Minute))
	}
}

func TestStoreFailureLeavesStateUnchanged(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, session.Policy{})
	s, tok, key := h.create("view", 30*time.Minute)
	h.store.SetFail(errors.New("disk full"))
	if _, err := h.b.Approve(ctx, tok, key, mustScopes(t, "view"), customer); err == nil {
		t.Fatal("approve succeeded with a failing store")
	}
	if got := h.get(s.ID).State; got != session.Requested {
		t.Fatalf("state %s after failed approve, want requested", got)
	}
	h.store.SetFail(nil)
}

// TestUnstoredEndKeptAndRetried: a revoke whose end cannot be stored (a
// full disk) is in force at once: the channels close, the broker refuses
// the session and shows it ended. The store still says active, so that a
// restart would bring the session back; the broker stores the end again,
// with a growing delay, until it works. Before, the broker forgot it: a
// restart gave the agent back the access the customer took away.
func TestUnstoredEndKeptAndRetried(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, session.Policy{})
	s, tok, key := h.create("view", 30*time.Minute)
	h.approve(tok, key, "view")
	c, _ := h.b.Context(s.ID)
	h.store.SetFail(errors.New("disk full"))
	got, err := h.b.Revoke(ctx, s.ID, agent)
	if err != nil || got.State != session.Ended || got.EndReason != session.EndRevoked {
		t.Fatalf("revoke with a failing store: %v, %v; want it ended (revoked), the end kept to store", got, err)
	}
	if c == nil || c.Err() == nil {
		t.Fatal("revoke did not cancel the session context")
	}
	if r, ok := session.EndReasonOf(c); !ok || r != session.EndRevoked {
		t.Fatalf("EndReasonOf = %q, %v; want revoked", r, ok)
	}
	if _, _, err := h.b.Authorize(ctx, s.ID, session.Need{Agent: "alice", Kind: session.View}); err == nil {
		t.Fatal("the revoked session is still authorized")
	}
	if g := h.get(s.ID); g.State != session.Ended || g.EndReason != session.EndRevoked {
		t.Fatalf("Get: %s/%s, want ended/revoked", g.State, g.EndReason)
	}
	stored := func() *session.Session {
		t.Helper()
		st, err := h.store.GetSession(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	if stored().State != session.Active || h.b.UnsavedEnds() != 1 {
		t.Fatalf("stored %s with %d unsaved ends, want active and 1", stored().State, h.b.UnsavedEnds())
	}
	h.clock.Advance(3 * time.Second) // retries at 1 s and 3 s fail
	if stored().State != session.Active || h.b.UnsavedEnds() != 1 {
		t.Fatalf("after failed retries: stored %s, %d unsaved", stored().State, h.b.UnsavedEnds())
	}
	h.store.SetFail(nil)
	h.clock.Advance(4 * time.Second) // the next retry, 4 s later
	if st := stored(); st.State != session.Ended || st.EndReason != session.EndRevoked || h.b.UnsavedEnds() != 0 {
		t.Fatalf("after the store recovered: stored %s/%s, %d unsaved; want ended/revoked, 0", st.State, st.EndReason, h.b.UnsavedEnds())
	}
	// A restart finds it ended.
	if n := h.broker(session.Policy{}).OpenCount(); n != 0 {
		t.Fatalf("a restarted broker has %d open sessions, want 0", n)
	}
}

// TestUnstoredExpiryKept: a session the time box ended, whose end cannot
// be stored, is kept the same way (an idle end would otherwise give the
// session a fresh idle period after a restart), and Close tries once more.
func TestUnstoredExpiryKept(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, session.Policy{})
	s, tok, key := h.create("view", 10*time.Minute)
	h.approve(tok, key, "view")
	h.store.SetFail(errors.New("disk full"))
	h.clock.Advance(10 * time.Minute)
	if g := h.get(s.ID); g.State != session.Ended || g.EndReason != session.EndExpired || h.b.UnsavedEnds() != 1 {
		t.Fatalf("after the deadline: %s/%s with %d unsaved", g.State, g.EndReason, h.b.UnsavedEnds())
	}
	h.store.SetFail(nil)
	h.b.Close()
	if st, err := h.store.GetSession(ctx, s.ID); err != nil || st.State != session.Ended {
		t.Fatalf("after Close: stored %v, %v; want ended", st, err)
	}
}

func TestConcurrentApproveOnce(t *testing.T) {
	h := newHarness(t, session.Policy{})
	_, tok, key := h.create("view", 30*time.Minute)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h.b.Approve(context.Background(), tok, key, mustScopes(t, "view"), customer); err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ok != 1 {
		t.Fatalf("%d approvals succeeded, want exactly 1", ok)
	}
}

func TestPolicyRefusesUnenforcedFourEyes(t *testing.T) {
	if _, err := (session.Policy{SupervisorFor: []session.Kind{session.Shell}}).WithDefaults(); err == nil {
		t.Fatal("a policy asking for four-eyes approval was accepted although nothing enforces it")
	}
}

// gatedStore fails the first UpdateSessions after arm, once the test
// releases it; the others go through.
type gatedStore struct {
	*sessiontest.MemStore
	mu               sync.Mutex
	entered, release chan struct{}
}

func (g *gatedStore) arm() (entered, release chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.entered, g.release = make(chan struct{}), make(chan struct{})
	return g.entered, g.release
}

func (g *gatedStore) UpdateSessions(ctx context.Context, cs ...session.Change) error {
	g.mu.Lock()
	entered, release := g.entered, g.release
	g.entered = nil
	g.mu.Unlock()
	if entered != nil {
		close(entered)
		<-release
		return errors.New("disk full")
	}
	return g.MemStore.UpdateSessions(ctx, cs...)
}

// TestUnstoredEndDuringLock: an admin locks the agent while the end of
// one of the agent's sessions fails to store. Keeping that end took the
// broker's lock under the session's, the reverse of LockAgent's order,
// and the whole broker hung.
func TestUnstoredEndDuringLock(t *testing.T) {
	ctx := context.Background()
	st := &gatedStore{MemStore: sessiontest.NewMemStore()}
	b, err := session.NewBroker(session.Config{Store: st, Clock: sessiontest.NewClock(t0)})
	if err != nil {
		t.Fatal(err)
	}
	b.Start(ctx)
	defer b.Close()
	s := approvedOn(t, b)
	entered, release := st.arm()
	done := make(chan struct{}, 2)
	go func() { b.Revoke(ctx, s.ID, agent); done <- struct{}{} }() // in the store call, holding the session's lock
	<-entered
	go func() { b.LockAgent(ctx, "alice", agent); done <- struct{}{} }() // takes the broker's lock, then the session's
	time.Sleep(100 * time.Millisecond)
	close(release) // the store fails: the end is kept
	for range 2 {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Revoke and LockAgent never returned: deadlock")
		}
	}
	if got, _ := b.Get(ctx, s.ID); got.State != session.Ended {
		t.Errorf("session %s, want ended", got.State)
	}
}
