package sqlite

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"supportgate/gateway/audit"
	"supportgate/session"
	"supportgate/session/sessiontest"
)

// Benchmarks report ops/s and, as STYLE.md asks, a ratio against a baseline
// measured in the same run on the same file: one single-row INSERT
// transaction into a two-column table through the same writer connection,
// the least any durable write can cost here.
//
//	go test -run '^$' -bench . -benchtime 2s ./gateway/sqlite/

var benchBase = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func benchSession(i int) *session.Session {
	created := benchBase.Add(time.Duration(i) * time.Millisecond)
	return &session.Session{
		ID: fmt.Sprintf("%016x", i), Agent: fmt.Sprintf("agent%d", i%50), AgentName: "Agent Smith", Team: "tier1",
		Customer: "ACME ticket 1234", Reason: "printer", Requested: session.Scopes{{Kind: session.View}, {Kind: session.Chat},
			{Kind: session.Tunnel, Ports: []uint16{22, 443}}},
		Duration: 30 * time.Minute, State: session.Requested, CreatedAt: created,
		ConsentExpiresAt: created.Add(15 * time.Minute), LastActivity: created, IdleTimeout: 10 * time.Minute, VerificationCode: "123456",
		TokenHash: [32]byte{byte(i), byte(i >> 8), byte(i >> 16), byte(i >> 24), 0xbe, 0xef}, Version: 1,
	}
}

func approve(s *session.Session) {
	s.Version++
	s.State = session.Active
	s.Scopes = s.Requested
	s.ApprovedAt = s.CreatedAt.Add(time.Minute)
	s.ExpiresAt = s.ApprovedAt.Add(s.Duration)
	s.LastActivity = s.ApprovedAt
	s.ClientHash = [32]byte{1, 2, 3}
}

func end(s *session.Session) {
	s.Version++
	s.State = session.Ended
	s.EndReason = session.EndLocked
	s.EndedBy = "admin"
	s.EndedAt = s.CreatedAt.Add(time.Hour)
	s.Scopes = nil
}

// baseline returns the ns per single-row insert transaction on st, begun
// and committed the way the store's writes are.
func baseline(b *testing.B, st *Store) float64 {
	b.Helper()
	ctx := context.Background()
	if _, err := st.wconn.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS bench_baseline (k INTEGER PRIMARY KEY, v BLOB) STRICT"); err != nil {
		b.Fatal(err)
	}
	ins, err := st.wconn.PrepareContext(ctx, "INSERT INTO bench_baseline (v) VALUES (?)")
	if err != nil {
		b.Fatal(err)
	}
	defer ins.Close()
	const n = 2000
	v := make([]byte, 32)
	start := time.Now()
	for range n {
		if _, err := st.stmts.begin.ExecContext(ctx); err != nil {
			b.Fatal(err)
		}
		if _, err := ins.ExecContext(ctx, v); err != nil {
			b.Fatal(err)
		}
		if _, err := st.stmts.commit.ExecContext(ctx); err != nil {
			b.Fatal(err)
		}
	}
	return float64(time.Since(start).Nanoseconds()) / n
}

// report adds ops/s (ops is how many of unit one iteration did) and the
// ratio of the time per iteration to the baseline.
func report(b *testing.B, iters, ops int, unit string, base float64) {
	b.Helper()
	if iters == 0 {
		return
	}
	el := b.Elapsed()
	b.ReportMetric(float64(iters*ops)/el.Seconds(), unit+"/s")
	b.ReportMetric(float64(el.Nanoseconds())/float64(iters)/base, "x-baseline")
}

func BenchmarkBaselineInsert(b *testing.B) {
	st, _ := openTemp(b)
	ns := baseline(b, st)
	for b.Loop() {
	}
	b.ReportMetric(1e9/ns, "tx/s")
	b.ReportMetric(ns, "ns/tx")
}

func BenchmarkCreateSession(b *testing.B) {
	st, _ := openTemp(b)
	base := baseline(b, st)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		if err := st.CreateSession(ctx, session.Change{Session: benchSession(i)}); err != nil {
			b.Fatal(err)
		}
		i++
	}
	report(b, i, 1, "sessions", base)
}

// BenchmarkCreateApprove is the gateway's target load: a session created
// and then approved (2,000/s on 2 cores).
func BenchmarkCreateApprove(b *testing.B) {
	st, _ := openTemp(b)
	base := baseline(b, st)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		s := benchSession(i)
		if err := st.CreateSession(ctx, session.Change{Session: s}); err != nil {
			b.Fatal(err)
		}
		approve(s)
		if err := st.UpdateSessions(ctx, sessiontest.Changes(s)...); err != nil {
			b.Fatal(err)
		}
		i++
	}
	report(b, i, 1, "sessions", base)
}

// BenchmarkCreateApproveParallel is the same from many goroutines, the way
// HTTP handlers call it.
func BenchmarkCreateApproveParallel(b *testing.B) {
	st, _ := openTemp(b)
	ctx := context.Background()
	var next atomic.Int64
	b.SetParallelism(8) // 8 x GOMAXPROCS goroutines, like busy HTTP handlers
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s := benchSession(int(next.Add(1)))
			if err := st.CreateSession(ctx, session.Change{Session: s}); err != nil {
				b.Error(err)
				return
			}
			approve(s)
			if err := st.UpdateSessions(ctx, sessiontest.Changes(s)...); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sessions/s")
}

func createN(b *testing.B, st *Store, from, n int) []*session.Session {
	b.Helper()
	ss := make([]*session.Session, n)
	for i := range ss {
		ss[i] = benchSession(from + i)
	}
	// Load in big transactions: setup, not what is measured.
	for lo := 0; lo < n; lo += 1000 {
		hi := min(lo+1000, n)
		if _, err := st.stmts.begin.Exec(); err != nil {
			b.Fatal(err)
		}
		for _, s := range ss[lo:hi] {
			args, err := sessionArgs(s)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := st.stmts.insertSession.Exec(args...); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := st.stmts.commit.Exec(); err != nil {
			b.Fatal(err)
		}
	}
	return ss
}

func BenchmarkUpdateSessions(b *testing.B) {
	st, _ := openTemp(b)
	base := baseline(b, st)
	ctx := context.Background()
	ss := createN(b, st, 0, 1000)
	i := 0
	for b.Loop() {
		s := ss[i%len(ss)]
		s.Version++
		s.LastActivity = s.LastActivity.Add(time.Second)
		if err := st.UpdateSessions(ctx, sessiontest.Changes(s)...); err != nil {
			b.Fatal(err)
		}
		i++
	}
	report(b, i, 1, "sessions", base)
}

func BenchmarkUpdateSessionsBatch256(b *testing.B) {
	st, _ := openTemp(b)
	base := baseline(b, st)
	ctx := context.Background()
	const batch = 256
	ss := createN(b, st, 0, 40*batch)
	i := 0
	for b.Loop() {
		lo := (i % 40) * batch
		part := ss[lo : lo+batch]
		for _, s := range part {
			s.Version++
			s.LastActivity = s.LastActivity.Add(time.Second)
		}
		if err := st.UpdateSessions(ctx, sessiontest.Changes(part...)...); err != nil {
			b.Fatal(err)
		}
		i++
	}
	report(b, i, batch, "sessions", base)
}

// BenchmarkEndBurst10000 ends 10,000 active sessions in UpdateSessions
// batches of 256, as locking many agents at once does; ms/burst is the
// figure to watch.
func BenchmarkEndBurst10000(b *testing.B) {
	st, _ := openTemp(b)
	ctx := context.Background()
	const n, batch = 10000, 256
	round := 0
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		ss := createN(b, st, round*n, n)
		for _, s := range ss {
			end(s)
		}
		b.StartTimer()
		start := time.Now()
		for lo := 0; lo < n; lo += batch {
			if err := st.UpdateSessions(ctx, sessiontest.Changes(ss[lo:min(lo+batch, n)]...)...); err != nil {
				b.Fatal(err)
			}
		}
		total += time.Since(start)
		round++
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(round), "ms/burst")
	b.ReportMetric(float64(n*round)/total.Seconds(), "sessions/s")
}

func benchAppend(b *testing.B, batch int) {
	st, _ := openTemp(b)
	base := baseline(b, st)
	ctx := context.Background()
	seq := uint64(1)
	recs := make([]audit.Record, batch)
	i := 0
	for b.Loop() {
		for j := range recs {
			recs[j] = audit.Record{Seq: seq, Event: audit.Event{
				Time: benchBase.Add(time.Duration(seq) * time.Microsecond), Type: "session.approved", Actor: "customer",
				Session: "0123456789abcdef", Remote: "192.0.2.1:5555", Detail: map[string]string{"scopes": "view,chat"},
			}, Prev: "0000000000000000000000000000000000000000000000000000000000000000",
				Hash: "1111111111111111111111111111111111111111111111111111111111111111"}
			seq++
		}
		if err := st.AppendAudit(ctx, recs); err != nil {
			b.Fatal(err)
		}
		i++
	}
	report(b, i, batch, "records", base)
}

func BenchmarkAppendAudit(b *testing.B)        { benchAppend(b, 1) }
func BenchmarkAppendAuditBatch64(b *testing.B) { benchAppend(b, 64) }

func BenchmarkGetSession(b *testing.B) {
	st, _ := openTemp(b)
	ctx := context.Background()
	ss := createN(b, st, 0, 1000)
	i := 0
	for b.Loop() {
		if _, err := st.GetSession(ctx, ss[i%len(ss)].ID); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "reads/s")
}

// BenchmarkChainedCreateBindApprove is the store's share of the gateway's
// create+approve path: each session is created, bound to its first client
// and approved, three writes each carrying its audit record (chained by an
// audit.Log inside the write, as the gateway's auditedSessions does), from
// 16 goroutines like the HTTP benchmark's workers. cpu-us/session is the
// process CPU time per session, tx/session the group commits per session,
// x-baseline the time per session over one single-row insert transaction.
func BenchmarkChainedCreateBindApprove(b *testing.B) {
	st, _ := openTemp(b)
	base := baseline(b, st)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	l, err := audit.New(audit.Config{Store: st, Signer: priv})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	chain := func(typ string, s *session.Session, detail map[string]string) audit.ChainFunc {
		c, err := l.Chain([]audit.Event{{Type: typ, Actor: "customer", Role: "customer", Session: s.ID,
			Remote: "127.2.0.1", Detail: detail}})
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	const workers = 16
	var next atomic.Int64
	tx0, _ := st.WriteStats()
	cpu0 := processCPU()
	b.ResetTimer()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1))
				if i > b.N {
					return
				}
				s := benchSession(i)
				s.Agent = fmt.Sprintf("agent%d", i%8)
				if err := st.CreateSessionChained(ctx, s, chain("session.created", s,
					map[string]string{"agent": s.Agent, "customer": s.Customer, "scopes": "view,chat", "duration": "30m0s"})); err != nil {
					b.Error(err)
					return
				}
				prev := s.Clone()
				s.Version++
				s.ClientHash = [32]byte{byte(i), 9}
				if err := st.UpdateSessionsChained(ctx, []session.Change{{Session: s, Before: prev}}, chain("consent.viewed", s,
					map[string]string{"agent": s.Agent})); err != nil {
					b.Error(err)
					return
				}
				prev = s.Clone()
				approve(s)
				if err := st.UpdateSessionsChained(ctx, []session.Change{{Session: s, Before: prev}}, chain("session.approved", s,
					map[string]string{"agent": s.Agent, "requested": "view,chat", "approved": "view", "granted": "view",
						"expires_at": "2025-01-01T00:31:00Z"})); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	cpu := processCPU() - cpu0
	tx, _ := st.WriteStats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sessions/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/session")
	b.ReportMetric(float64(tx-tx0)/float64(b.N), "tx/session")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/base, "x-baseline")
}

// processCPU returns the user and system CPU time of the process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
