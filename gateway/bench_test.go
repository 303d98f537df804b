package gateway_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"supportgate/gateway"
	"supportgate/gateway/identity"
	"supportgate/gateway/keys"
	"supportgate/gateway/sqlite"
	"supportgate/internal/gctune"
	"supportgate/session"
)

// benchAgents is how many agent accounts the clients share.
const (
	benchAgents = 8
	// benchPerConn is how many customers share one connection with
	// conn=shared, the shape of the figures measured before the others
	// existed.
	benchPerConn = 14
)

// benchWorkers is how many clients run at once in BenchmarkCreateApproveHTTP
// and BenchmarkCreateApproveLean. The default, 16, is what every figure in
// bench/README.md before session 9 used.
var benchWorkers = flag.Int("benchworkers", 16, "`clients` at once in BenchmarkCreateApproveHTTP and BenchmarkCreateApproveLean")

const benchPassword = "bench horse battery staple"

// connMode is how the customers of BenchmarkCreateApproveHTTP connect.
type connMode string

const (
	// connNew: every customer is a browser that has never been to the
	// gateway: a connection of its own from an address of its own, a full
	// TLS handshake, then its GET and POST over that connection.
	connNew connMode = "new"
	// connResumed: the same, but the browser has been here before and
	// resumes a TLS session from a ticket, as browsers do (the tickets
	// come from a cache the customers share; the server cannot tell).
	connResumed connMode = "resumed"
	// connNewH2 is connNew over HTTP/2, which browsers negotiate with the
	// gateway (agents stay on HTTP/1.1, as the CLI does).
	connNewH2 connMode = "new-h2"
	// connShared: benchPerConn customers, each with its own cookie jar,
	// take turns on one keep-alive connection.
	connShared connMode = "shared"
)

// BenchmarkCreateApproveHTTP measures sessions created and approved per
// second through the HTTPS API of a real gateway on the SQLite store, with
// the clients in the same process: an agent POSTs /api/v1/sessions, then
// the customer GETs the consent link (binding it with the cookie) and
// POSTs its approval with the CSRF token. benchWorkers clients run at
// once on loopback; agents keep their HTTP/1.1 connections alive, and the
// sub-benchmarks differ in how customers connect (see connMode).
//
// The baseline, measured in the same run, is the same clients making the
// same three round trips over connections made the same way, to the bare
// GET /healthz: one on the agent's connection, two on the customer's.
// x-baseline is the time per session over the time of those three round
// trips, and cpu-x-baseline the same ratio of process CPU time (client and
// server), which other load on the machine disturbs much less; both are
// what the gateway's own work costs over plain HTTPS. tx/session and
// writes/session count the SQLite write transactions and the writes
// grouped into them.
//
//	go test -run '^$' -bench CreateApproveHTTP -benchtime 3000x ./gateway/
func BenchmarkCreateApproveHTTP(b *testing.B) {
	for _, mode := range []connMode{connNew, connResumed, connNewH2, connShared} {
		b.Run("conn="+string(mode), func(b *testing.B) { benchCreateApprove(b, mode, false) })
	}
}

// BenchmarkCreateApproveLean is BenchmarkCreateApproveHTTP with a lean
// load generator instead of net/http's client (see leanConn): the same
// gateway and the same requests, with less of the two cores taken by the
// clients.
//
//	go test -run '^$' -bench 'CreateApproveLean' -benchtime 3000x ./gateway/
func BenchmarkCreateApproveLean(b *testing.B) {
	for _, mode := range []connMode{connNew, connShared} {
		b.Run("conn="+string(mode), func(b *testing.B) { benchCreateApprove(b, mode, true) })
	}
}

func benchCreateApprove(b *testing.B, mode connMode, lean bool) {
	restoreGC, _ := gctune.Apply() // as serve runs (GOGC=100 in the environment measures Go's default)
	defer restoreGC()
	bg := newBenchGateway(b)
	agents := make([]*benchAgent, benchAgents)
	for i := range agents {
		agents[i] = bg.agent(b, i)
	}

	// Each phase starts from a collected heap and an idle store, and its
	// CPU time includes the work it leaves behind: collecting its garbage
	// and the store's checkpoint of its writes (see settle).
	settle()
	txs0, writes0 := bg.st.WriteStats()
	cpu0 := processCPU()
	b.ResetTimer()
	start := time.Now()
	var err error
	if lean {
		err = bg.runLeanWorkers(b.N, mode, 2, agents, func(ac, cc *leanConn, a *benchAgent) error {
			return leanCreateAndApprove(ac, cc, a)
		})
	} else {
		err = bg.runWorkers(b.N, mode, 2, func(w int, cust *http.Client) error {
			return bg.createAndApprove(agents[w%len(agents)], cust)
		})
	}
	elapsed := time.Since(start)
	b.StopTimer()
	txs, writes := bg.st.WriteStats()
	txs, writes = txs-txs0, writes-writes0
	settle()
	cpu := processCPU() - cpu0
	if err != nil {
		b.Fatal(err)
	}

	// Baseline: the same round trips to /healthz, connections made the
	// same way (customers from addresses of their own group).
	hcpu0 := processCPU()
	hstart := time.Now()
	if lean {
		err = bg.runLeanWorkers(b.N, mode, 3, agents, func(ac, cc *leanConn, _ *benchAgent) error {
			for _, c := range []*leanConn{ac, cc, cc} {
				if err := leanHealthz(c); err != nil {
					return err
				}
			}
			return nil
		})
	} else {
		err = bg.runWorkers(b.N, mode, 3, func(w int, cust *http.Client) error {
			a := agents[w%len(agents)]
			for _, c := range []*http.Client{a.c, cust, cust} {
				if err := bg.healthz(c); err != nil {
					return err
				}
			}
			return nil
		})
	}
	helapsed := time.Since(hstart)
	settle()
	hcpu := processCPU() - hcpu0
	if err != nil {
		b.Fatal(err)
	}

	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "sessions/s")
	b.ReportMetric(float64(b.N)/helapsed.Seconds(), "baseline/s")
	b.ReportMetric(elapsed.Seconds()/helapsed.Seconds(), "x-baseline")
	b.ReportMetric(float64(txs)/float64(b.N), "tx/session")
	// CPU time, client and server together, depends far less on other
	// load on the machine than wall time does.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/session")
	b.ReportMetric(float64(cpu)/float64(hcpu), "cpu-x-baseline")
	b.ReportMetric(float64(writes)/float64(b.N), "writes/session")
	if got := bg.g.Broker().OpenCount(); got != b.N {
		b.Errorf("got %d open sessions, want %d", got, b.N)
	}
}

// runWorkers runs iteration n times over benchWorkers goroutines; w is the
// worker and cust the client of the iteration's customer, connected as
// mode says from loopback addresses 127.group.x.y.
func (bg *benchGateway) runWorkers(n int, mode connMode, group byte, iteration func(w int, cust *http.Client) error) error {
	var addrs atomic.Uint32
	newTransport := func() *http.Transport {
		a := addrs.Add(1)
		tr := bg.transport(net.IPv4(127, group, byte(a>>8), byte(a)))
		switch mode {
		case connResumed:
			tr.TLSClientConfig.ClientSessionCache = bg.tickets
		case connNewH2:
			tr.ForceAttemptHTTP2 = true
		}
		return tr
	}
	var next atomic.Int64
	errs := make(chan error, *benchWorkers)
	var wg sync.WaitGroup
	for w := range *benchWorkers {
		wg.Go(func() {
			var tr *http.Transport
			served := 0
			defer func() {
				if tr != nil {
					tr.CloseIdleConnections()
				}
			}()
			for next.Add(1) <= int64(n) {
				if tr == nil || mode != connShared || served == benchPerConn {
					if tr != nil {
						tr.CloseIdleConnections()
					}
					tr, served = newTransport(), 0
				}
				served++
				jar, err := cookiejar.New(nil)
				if err != nil {
					errs <- err
					return
				}
				if err := iteration(w, &http.Client{Transport: tr, Jar: jar}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr(errs)
}

// firstErr returns the first error the workers sent on errs, if any.
func firstErr(errs chan error) error {
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// settle lets the work a phase left behind finish: the store checkpoints
// its WAL 100 ms after writes, and a collection frees the phase's garbage.
func settle() {
	time.Sleep(300 * time.Millisecond)
	runtime.GC()
}

// processCPU returns the user and system CPU time of the process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchGateway is a gateway on the SQLite store in a temporary directory,
// on the wall clock, behind a TLS listener on 127.0.0.1.
type benchGateway struct {
	mat     *keys.Material
	st      *sqlite.Store
	g       *gateway.Gateway
	srv     *httptest.Server
	tickets tls.ClientSessionCache // the customers' with conn=resumed
}

// newBenchGateway starts a benchGateway. Everything its server side starts
// (the store's checkpointer, the HTTP
// server and each connection's goroutine) carries the profiler label
// side=server, so that a CPU profile tells the gateway from its clients:
// go tool pprof -tagfocus side=server (or -tagignore) on -cpuprofile.
func newBenchGateway(b *testing.B) *benchGateway {
	b.Helper()
	var bg *benchGateway
	pprof.Do(context.Background(), pprof.Labels("side", "server"), func(ctx context.Context) {
		bg = startBenchGateway(b)
	})
	return bg
}

func startBenchGateway(b *testing.B) *benchGateway {
	b.Helper()
	dir := b.TempDir()
	mat, _, err := keys.LoadOrCreate(filepath.Join(dir, "data"), keys.Options{})
	if err != nil {
		b.Fatal(err)
	}
	st, err := sqlite.Open(filepath.Join(dir, "bench.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	g, err := gateway.New(gateway.Config{
		Store: st, Keys: mat, PublicURL: "https://" + srv.Listener.Addr().String(),
		Policy: session.Policy{MaxOpenPerAgent: 1_000_000},
		// Cheap hashes: logins are setup here, not what is measured.
		PasswordParams: identity.PasswordParams{Memory: 1024, Time: 1, Threads: 1},
	})
	if err != nil {
		st.Close()
		b.Fatal(err)
	}
	srv.Config.Handler = g.Handler()
	srv.TLS = mat.TLSConfig()
	srv.StartTLS()
	if err := g.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		srv.Close()
		g.Close()
		st.Close()
	})
	return &benchGateway{mat: mat, st: st, g: g, srv: srv, tickets: tls.NewLRUClientSessionCache(64)}
}

// transport returns an HTTP/1.1 keep-alive transport whose connections
// come from the loopback address src and trust the gateway's CA.
func (bg *benchGateway) transport(src net.IP) *http.Transport {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: src}}
	return &http.Transport{
		DialContext:         d.DialContext,
		TLSClientConfig:     &tls.Config{RootCAs: bg.mat.CAPool()},
		MaxIdleConnsPerHost: 4,
	}
}

// benchAgent is a logged-in agent with a client of its own address.
type benchAgent struct {
	token string
	c     *http.Client
}

// agent creates the enrolled agent number i and logs it in through the
// API, from an address of its own because logins are rate limited.
func (bg *benchGateway) agent(b *testing.B, i int) *benchAgent {
	b.Helper()
	name := fmt.Sprintf("bench%02d", i)
	ctx := context.Background()
	acct, err := bg.g.Accounts().Create(ctx, gateway.NewUser{Name: name, Role: identity.RoleAgent, Password: benchPassword})
	if err != nil {
		b.Fatal(err)
	}
	tr := bg.transport(net.IPv4(127, 1, 0, byte(i+1)))
	tr.MaxIdleConnsPerHost = *benchWorkers
	b.Cleanup(tr.CloseIdleConnections)
	a := &benchAgent{c: &http.Client{Transport: tr}}
	var resp struct {
		Token string `json:"token"`
	}
	login := map[string]string{"user": name, "password": benchPassword, "totp": identity.TOTPCode(acct.User.TOTPSecret, time.Now())}
	if err := bg.call(a.c, "POST", "/api/v1/login", login, http.StatusOK, &resp, nil); err != nil {
		b.Fatal(err)
	}
	a.token = resp.Token
	return a
}

// createAndApprove is one measured iteration: the agent asks, the
// customer, with a browser of its own (cust: its connection and an empty
// cookie jar), opens the link and approves.
func (bg *benchGateway) createAndApprove(a *benchAgent, cust *http.Client) error {
	var created gateway.CreateResponse
	req := map[string]any{"customer": "Bench Customer", "scopes": []string{"view", "chat"}, "duration": "30m", "reason": "benchmark"}
	if err := bg.call(a.c, "POST", "/api/v1/sessions", req, http.StatusCreated, &created,
		http.Header{"Authorization": {"Bearer " + a.token}}); err != nil {
		return err
	}
	tok := created.ConsentURL[strings.LastIndex(created.ConsentURL, "/")+1:]
	var view gateway.ConsentView
	if err := bg.call(cust, "GET", "/api/v1/consent/"+tok, nil, http.StatusOK, &view, nil); err != nil {
		return err
	}
	if err := bg.call(cust, "POST", "/api/v1/consent/"+tok+"/approve", map[string]any{"scopes": []string{"view"}},
		http.StatusOK, &view, http.Header{"X-CSRF-Token": {view.CSRFToken}}); err != nil {
		return err
	}
	if view.State != session.Active {
		return fmt.Errorf("approve: got state %s, want active", view.State)
	}
	return nil
}

func (bg *benchGateway) healthz(c *http.Client) error {
	return bg.call(c, "GET", "/healthz", nil, http.StatusOK, nil, nil)
}

// call sends a JSON request and decodes the JSON answer into out.
func (bg *benchGateway) call(c *http.Client, method, path string, body any, want int, out any, h http.Header) error {
	var rd io.Reader
	if body != nil {
		buf, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, bg.srv.URL+path, rd)
	if err != nil {
		return err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: got status %d, want %d: %s", method, path, resp.StatusCode, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}
