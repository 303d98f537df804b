package session_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"supportgate/gateway/sqlite"
	"supportgate/session"
	"supportgate/session/sessiontest"
)

// Expiry benchmark shape (issue 2): this many active sessions whose
// deadlines are spread evenly over spread of real time.
const (
	expirySessions = 10_000
	expirySpread   = 3 * time.Second
	// expiryPilot sessions are approved and revoked first to time the
	// store, so that the lead of the deadlines over their approval covers
	// approving every session, measuring the heap and starting the
	// watchers: no deadline may pass before it is watched.
	expiryPilot = 200
)

// BenchmarkExpiryLateness measures how late the Broker ends time boxes on
// the real clock: 10,000 active sessions with deadlines spread over three
// seconds, each session's context watched by a goroutine that notes when
// Done fires. It reports the worst and 99th percentile lateness (target:
// worst under 1 s), the live heap per active session (target: under
// 50 KB), and, as a baseline measured in the same run, the lateness of
// bare time.AfterFunc timers for the same deadlines watched the same way
// (x-baseline is broker worst lateness over baseline worst lateness).
//
//	go test -run '^$' -bench ExpiryLateness -benchtime 1x ./session/
func BenchmarkExpiryLateness(b *testing.B) {
	b.Run("store=sqlite", func(b *testing.B) {
		benchExpiry(b, func(b *testing.B) session.Store {
			st, err := sqlite.Open(filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			return st
		})
	})
	b.Run("store=mem", func(b *testing.B) {
		benchExpiry(b, func(*testing.B) session.Store { return sessiontest.NewMemStore() })
	})
}

// expiryResult is one run of the benchmark.
type expiryResult struct {
	late     []time.Duration // per session, sorted
	baseLate []time.Duration // bare timers, sorted
	perSess  float64         // live heap bytes per active session
	setup    time.Duration   // creating, opening and approving every session
}

func benchExpiry(b *testing.B, newStore func(*testing.B) session.Store) {
	var worst expiryResult
	for range b.N {
		r := runExpiry(b, newStore(b))
		if worst.late == nil || r.late[len(r.late)-1] > worst.late[len(worst.late)-1] {
			worst = r
		}
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	worstLate, p99 := worst.late[len(worst.late)-1], percentile(worst.late, 0.99)
	baseWorst := worst.baseLate[len(worst.baseLate)-1]
	b.ReportMetric(ms(worstLate), "worst-late-ms")
	b.ReportMetric(ms(p99), "p99-late-ms")
	b.ReportMetric(ms(percentile(worst.late, 0.50)), "p50-late-ms")
	b.ReportMetric(worst.perSess, "B/session")
	b.ReportMetric(ms(baseWorst), "base-worst-late-ms")
	b.ReportMetric(ms(percentile(worst.baseLate, 0.99)), "base-p99-late-ms")
	b.ReportMetric(float64(worstLate)/float64(max(baseWorst, time.Microsecond)), "x-baseline")
	b.ReportMetric(worst.setup.Seconds(), "setup-s")
	if worstLate >= time.Second {
		b.Errorf("worst lateness %v, want under 1s", worstLate)
	}
	if worst.perSess >= 50_000 {
		b.Errorf("%.0f B per active session, want under 50 KB", worst.perSess)
	}
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// runExpiry makes expirySessions active sessions on st, waits for all of
// them to end and measures how late each context was cancelled.
func runExpiry(b *testing.B, st session.Store) expiryResult {
	b.Helper()
	ctx := context.Background()
	br, err := session.NewBroker(session.Config{
		Store: st,
		Clock: session.RealClock{},
		Policy: session.Policy{
			MinDuration: time.Second, MaxDuration: time.Hour,
			MaxOpenPerAgent: 1_000_000, IdleTimeout: -1,
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	if err := br.Start(ctx); err != nil {
		b.Fatal(err)
	}
	scopes, err := session.ParseScopes("view,chat")
	if err != nil {
		b.Fatal(err)
	}
	customer := session.Actor{Name: "customer", Role: "customer"}
	lead, err := expiryLead(ctx, br, scopes)
	if err != nil {
		b.Fatal(err)
	}
	heapBefore := liveHeap()
	start := time.Now()

	// Create and bind every link first, then approve them in one tight
	// loop: the time box starts at approval, so the deadlines are the
	// approval times (close together) plus durations spread evenly.
	type pending struct {
		id, token, key string
	}
	ps := make([]pending, expirySessions)
	step := expirySpread / expirySessions
	for i := range ps {
		agent := fmt.Sprintf("agent%02d", i%50)
		s, tok, err := br.Create(ctx, session.Actor{Name: agent, Role: "agent"}, session.NewRequest{
			Agent: agent, AgentName: agent, Customer: fmt.Sprintf("Customer %d", i),
			Reason: "expiry benchmark", Scopes: scopes,
			Duration: lead + time.Duration(i)*step,
		})
		if err != nil {
			b.Fatalf("create %d: %v", i, err)
		}
		_, key, err := br.Open(ctx, tok, "", customer)
		if err != nil {
			b.Fatalf("open %d: %v", i, err)
		}
		ps[i] = pending{id: s.ID, token: tok, key: key}
	}
	deadlines := make([]time.Time, expirySessions)
	for i, p := range ps {
		s, err := br.Approve(ctx, p.token, p.key, scopes, customer)
		if err != nil {
			b.Fatalf("approve %d: %v", i, err)
		}
		deadlines[i] = s.ExpiresAt
	}
	setup := time.Since(start)
	ctxs := make([]context.Context, expirySessions)
	for i, p := range ps {
		if ctxs[i], err = br.Context(p.id); err != nil {
			b.Fatalf("context %d: %v", i, err)
		}
	}
	ps = nil
	perSess := float64(liveHeap()-heapBefore) / expirySessions
	if n := br.OpenCount(); n != expirySessions {
		b.Fatalf("got %d open sessions, want %d", n, expirySessions)
	}

	late, err := watch(ctxs, deadlines)
	if err != nil {
		b.Fatal(err)
	}
	if n := br.OpenCount(); n != 0 {
		b.Fatalf("got %d open sessions after the last deadline, want 0", n)
	}

	// Baseline: one bare runtime timer per session, for the same
	// deadlines shifted past now, watched the same way.
	shift := time.Since(slices.MinFunc(deadlines, time.Time.Compare)) + time.Second
	base := make([]time.Time, len(deadlines))
	baseCtxs := make([]context.Context, len(deadlines))
	for i, d := range deadlines {
		base[i] = d.Add(shift)
		c, cancel := context.WithCancel(ctx)
		time.AfterFunc(time.Until(base[i]), cancel)
		baseCtxs[i] = c
	}
	baseLate, err := watch(baseCtxs, base)
	if err != nil {
		b.Fatal(err)
	}
	return expiryResult{late: late, baseLate: baseLate, perSess: perSess, setup: setup}
}

// expiryLead times create, open and approve on br's store with pilot
// sessions, revoked again, and returns a lead comfortably longer than
// approving expirySessions sessions takes.
func expiryLead(ctx context.Context, br *session.Broker, scopes session.Scopes) (time.Duration, error) {
	customer := session.Actor{Name: "customer", Role: "customer"}
	agent := session.Actor{Name: "pilot", Role: "agent"}
	var approving time.Duration
	for i := range expiryPilot {
		s, tok, err := br.Create(ctx, agent, session.NewRequest{
			Agent: agent.Name, Customer: fmt.Sprintf("Pilot %d", i), Scopes: scopes, Duration: time.Hour,
		})
		if err != nil {
			return 0, fmt.Errorf("pilot create: %w", err)
		}
		_, key, err := br.Open(ctx, tok, "", customer)
		if err != nil {
			return 0, fmt.Errorf("pilot open: %w", err)
		}
		t := time.Now()
		if _, err := br.Approve(ctx, tok, key, scopes, customer); err != nil {
			return 0, fmt.Errorf("pilot approve: %w", err)
		}
		approving += time.Since(t)
		if _, err := br.Revoke(ctx, s.ID, agent); err != nil {
			return 0, fmt.Errorf("pilot revoke: %w", err)
		}
	}
	perApproval := approving / expiryPilot
	return max(2*time.Second, time.Second+2*perApproval*expirySessions), nil
}

// watch starts one goroutine per context, waits until every context is
// done and returns, sorted, how long after its deadline each one was.
func watch(ctxs []context.Context, deadlines []time.Time) ([]time.Duration, error) {
	if first := slices.MinFunc(deadlines, time.Time.Compare); !time.Now().Before(first) {
		return nil, fmt.Errorf("setup too slow: the first deadline passed %v before it was watched; raise the lead", time.Since(first))
	}
	late := make([]time.Duration, len(ctxs))
	var wg sync.WaitGroup
	for i, c := range ctxs {
		wg.Go(func() {
			<-c.Done()
			late[i] = time.Since(deadlines[i])
		})
	}
	wg.Wait()
	slices.Sort(late)
	return late, nil
}

// liveHeap returns the bytes of live heap objects after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
