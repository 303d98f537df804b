package detect_test

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"supportgate/gateway/detect"
)

var testAlert = detect.Alert{
	ID: "a7", Time: time.Date(2026, 3, 4, 3, 12, 5, 123456789, time.UTC), Kind: detect.KindSessionBurst,
	Severity: detect.Critical, Agent: "alice", Remote: "203.0.113.66", Count: 2, State: detect.Open,
	Summary: `alice opened 14 sessions in 10 minutes; their usual rate is about 1 an hour; 12 were with "new" customers`,
}

// waitFor polls cond for up to 5 s (loopback I/O, not timing, is what we wait on).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// noLeak fails the test if goroutines started during it outlive it.
func noLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Errorf("goroutines: got %d after the test, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func TestWebhookSignedAndRetried(t *testing.T) {
	noLeak(t)
	secret := []byte("0123456789abcdef-shared")
	var mu sync.Mutex
	var attempts int
	var got []detect.WebhookPayload
	var deliveries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		attempts++
		if !detect.VerifySignature(secret, r.Header.Get(detect.HeaderTimestamp), body, r.Header.Get(detect.HeaderSignature)) {
			t.Errorf("attempt %d: bad signature %q", attempts, r.Header.Get(detect.HeaderSignature))
		}
		if detect.VerifySignature([]byte("another secret, 16+"), r.Header.Get(detect.HeaderTimestamp), body, r.Header.Get(detect.HeaderSignature)) {
			t.Errorf("signature verifies under the wrong secret")
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type: got %q, want application/json", ct)
		}
		deliveries = append(deliveries, r.Header.Get(detect.HeaderDelivery))
		if attempts <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		var p detect.WebhookPayload
		if err := json.Unmarshal(body, &p); err != nil {
			t.Errorf("body: %v", err)
		}
		got = append(got, p)
	}))
	defer srv.Close()
	now := time.Unix(1772593925, 0)
	wh, err := detect.NewWebhook(detect.WebhookConfig{URL: srv.URL, Secret: secret, Backoff: time.Millisecond,
		MaxBackoff: 4 * time.Millisecond, Now: func() time.Time { return now }, Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	wh.Send(testAlert)
	waitFor(t, "delivery", func() bool { return wh.Stats().Sent == 1 })
	if err := wh.Close(); err != nil {
		t.Fatal(err)
	}
	wh.Close() // idempotent
	mu.Lock()
	defer mu.Unlock()
	if attempts != 3 {
		t.Errorf("attempts: got %d, want 3", attempts)
	}
	if st := wh.Stats(); st.Retries != 2 || st.Failed != 0 {
		t.Errorf("stats: got %+v, want 2 retries, 0 failed", st)
	}
	for _, d := range deliveries {
		if d != "a7.critical" {
			t.Errorf("delivery id: got %q, want a7.critical on every attempt", d)
		}
	}
	if len(got) != 1 || got[0].Type != "supportgate.alert" || got[0].Alert.Summary != testAlert.Summary || got[0].Alert.Severity != detect.Critical {
		t.Errorf("payload: got %+v", got)
	}
}

func TestWebhookGivesUpAndDrops(t *testing.T) {
	noLeak(t)
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		http.Error(w, "no", http.StatusBadRequest) // 4xx: not retried
	}))
	defer srv.Close()
	wh, err := detect.NewWebhook(detect.WebhookConfig{URL: srv.URL, Secret: []byte("0123456789abcdef"), Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	wh.Send(testAlert)
	waitFor(t, "failure", func() bool { return wh.Stats().Failed == 1 })
	wh.Close()
	wh.Send(testAlert)
	mu.Lock()
	defer mu.Unlock()
	if calls != 1 {
		t.Errorf("calls: got %d, want 1 (4xx is not retried)", calls)
	}
	if st := wh.Stats(); st.Dropped != 1 {
		t.Errorf("dropped after Close: got %d, want 1", st.Dropped)
	}
}

func TestWebhookConfig(t *testing.T) {
	for _, c := range []detect.WebhookConfig{
		{URL: "ftp://x/y", Secret: []byte("0123456789abcdef")},
		{URL: "http://127.0.0.1/hook", Secret: []byte("short")},
		{URL: "://bad", Secret: []byte("0123456789abcdef")},
	} {
		if _, err := detect.NewWebhook(c); err == nil {
			t.Errorf("NewWebhook(%q, %d-byte secret): got nil error", c.URL, len(c.Secret))
		}
	}
}

const wantSyslog = "<82>1 2026-03-04T03:12:05.123456Z gw1 supportgate - alert [alert@32473 id=\"a7\" kind=\"session_burst\" severity=\"critical\" agent=\"alice\" remote=\"203.0.113.66\" count=\"2\"] \ufeffalice opened 14 sessions in 10 minutes; their usual rate is about 1 an hour; 12 were with \"new\" customers"

func TestSyslogUDP(t *testing.T) {
	noLeak(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s, err := detect.NewSyslog(detect.SyslogConfig{Network: "udp", Addr: pc.LocalAddr().String(), Hostname: "gw1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Send(testAlert)
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 65536)
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(buf[:n]); got != wantSyslog {
		t.Errorf("message:\n got %q\nwant %q", got, wantSyslog)
	}
}

func TestSyslogTCPOctetCounting(t *testing.T) {
	noLeak(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	msgs := make(chan string, 4)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		readOctetCounted(c, msgs)
	}()
	s, err := detect.NewSyslog(detect.SyslogConfig{Network: "tcp", Addr: ln.Addr().String(), Hostname: "gw1"})
	if err != nil {
		t.Fatal(err)
	}
	s.Send(testAlert)
	s.Send(testAlert)
	for i := 0; i < 2; i++ {
		select {
		case got := <-msgs:
			if got != wantSyslog {
				t.Errorf("message %d:\n got %q\nwant %q", i, got, wantSyslog)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("timed out")
		}
	}
	s.Close()
	ln.Close()
	wg.Wait()
}

func TestFormatSyslogEscapes(t *testing.T) {
	a := detect.Alert{ID: "a1", Time: time.Unix(0, 0), Kind: detect.KindRiskyCommand, Severity: detect.High,
		Agent: `ev"il]\x`, Summary: "ran `rm -rf /`\n"}
	got := string(detect.FormatSyslog(a, "host name", "", "alert@32473", 4))
	want := "<35>1 1970-01-01T00:00:00.000000Z host_name - - alert [alert@32473 id=\"a1\" kind=\"risky_command\" severity=\"high\" agent=\"ev\\\"il\\]\\\\x\" count=\"0\"] \ufeffran `rm -rf /`\n"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// TestWebhookSecretNotLogged: the path and query of a webhook URL are
// often its secret, so neither a failed delivery's log lines nor a
// configuration error show them; the host does, to say where it failed.
func TestWebhookSecretNotLogged(t *testing.T) {
	noLeak(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens: every delivery fails to connect
	const secret = "T0SECRET/B0SECRET/XXXXsecretXXXX"
	var logs strings.Builder
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))
	wh, err := detect.NewWebhook(detect.WebhookConfig{URL: "http://" + addr + "/services/" + secret + "?token=" + secret,
		Secret: []byte("0123456789abcdef"), Backoff: time.Millisecond, MaxAttempts: 2, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	wh.Send(testAlert)
	waitFor(t, "failure", func() bool { return wh.Stats().Failed == 1 })
	wh.Close()
	mu.Lock()
	got := logs.String()
	mu.Unlock()
	if strings.Contains(got, "SECRET") || strings.Contains(got, "secret") {
		t.Errorf("the webhook's secret path reached the log:\n%s", got)
	}
	if !strings.Contains(got, addr) {
		t.Errorf("the log does not say which host failed:\n%s", got)
	}
	_, err = detect.NewWebhook(detect.WebhookConfig{URL: "ftp://" + addr + "/" + secret, Secret: []byte("0123456789abcdef")})
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("config error: %v", err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// readOctetCounted sends each octet-counted syslog message read from r
// (RFC 6587: "LEN MSG") to msgs, until r fails.
func readOctetCounted(r io.Reader, msgs chan<- string) {
	br := bufio.NewReader(r)
	for {
		lenStr, err := br.ReadString(' ')
		if err != nil {
			return
		}
		n, err := strconv.Atoi(strings.TrimSpace(lenStr))
		if err != nil || n < 0 || n > 1<<20 {
			return
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(br, b); err != nil {
			return
		}
		msgs <- string(b)
	}
}
