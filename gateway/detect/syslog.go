package detect

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// SyslogEnterpriseID is the private enterprise number in the structured
// data ID "alert@32473". 32473 is the number RFC 5612 reserves for
// documentation; a deployment with its own number can set SyslogConfig.SDID.
const SyslogEnterpriseID = 32473

// SyslogConfig configures a Syslog sink.
type SyslogConfig struct {
	// Network is "tls" (RFC 5425: TCP with TLS, octet-counted framing),
	// or "udp" or "tcp" (octet-counted framing, RFC 6587), which carry
	// alerts in plaintext and so are allowed to a loopback collector only
	// (a local relay such as rsyslog, which forwards them over TLS).
	Network   string
	Addr      string      // host:port of the collector
	TLS       *tls.Config // for "tls": roots and server name; nil means the system roots and Addr's host
	Hostname  string      // HOSTNAME field; default "supportgate"
	AppName   string      // APP-NAME field; default "supportgate"
	Facility  int         // 0–23; default 10 (authpriv)
	SDID      string      // structured data ID; default "alert@32473"
	QueueSize int         // default 256; beyond it Send drops
	// Dial opens the TCP or UDP connection (TLS runs over it); nil means a
	// net.Dialer with a 5 s timeout.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	Log  *slog.Logger // nil means discard
}

// Syslog sends alerts as RFC 5424 messages to one collector, from one
// goroutine it owns. It implements Sink.
type Syslog struct {
	cfg    SyslogConfig
	queue  chan Alert
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	conn   net.Conn // owned by the goroutine

	sent, failed, dropped atomic.Uint64
}

var _ Sink = (*Syslog)(nil)

// NewSyslog checks cfg and starts the sender. It does not dial until the
// first alert.
func NewSyslog(cfg SyslogConfig) (*Syslog, error) {
	if cfg.Network != "tls" && cfg.Network != "udp" && cfg.Network != "tcp" {
		return nil, fmt.Errorf("detect: syslog network %q: want tls, or udp or tcp to a loopback collector", cfg.Network)
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("detect: syslog address %q: %w", cfg.Addr, err)
	}
	if cfg.Network != "tls" && !isLoopbackHost(host) {
		// Alerts name agents, customers and commands: no plaintext
		// channel off the machine (DESIGN.md section 6).
		return nil, fmt.Errorf("detect: syslog over %s to %s would be plaintext off this machine: use tls, or a local relay", cfg.Network, cfg.Addr)
	}
	if cfg.Network == "tls" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.TLS != nil {
			tc = cfg.TLS.Clone()
			tc.MinVersion = max(tc.MinVersion, tls.VersionTLS12)
		}
		if tc.ServerName == "" {
			tc.ServerName = host
		}
		cfg.TLS = tc
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "supportgate"
	}
	if cfg.AppName == "" {
		cfg.AppName = "supportgate"
	}
	if cfg.SDID == "" {
		cfg.SDID = "alert@" + strconv.Itoa(SyslogEnterpriseID)
	}
	if cfg.Facility < 0 || cfg.Facility > 23 {
		return nil, fmt.Errorf("detect: syslog facility %d: want 0 to 23", cfg.Facility)
	}
	if cfg.Facility == 0 {
		cfg.Facility = 10
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 256
	}
	if cfg.Dial == nil {
		d := &net.Dialer{Timeout: 5 * time.Second}
		cfg.Dial = d.DialContext
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Syslog{cfg: cfg, queue: make(chan Alert, cfg.QueueSize)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.run()
	return s, nil
}

// Send queues an alert; it never blocks.
func (s *Syslog) Send(a Alert) {
	if s.ctx.Err() != nil {
		s.dropped.Add(1)
		return
	}
	select {
	case s.queue <- a:
	default:
		s.dropped.Add(1)
	}
}

// Close sends what is queued (one attempt each, within 2 seconds), then
// closes the connection and returns after the goroutine has stopped.
// Idempotent.
func (s *Syslog) Close() error {
	s.once.Do(func() {
		s.cancel()
		s.wg.Wait()
	})
	return nil
}

// Stats returns the counters (Retries is always zero).
func (s *Syslog) Stats() DeliveryStats {
	return DeliveryStats{Sent: s.sent.Load(), Failed: s.failed.Load(), Dropped: s.dropped.Load()}
}

func (s *Syslog) run() {
	defer s.wg.Done()
	defer func() {
		if s.conn != nil {
			s.conn.Close()
		}
	}()
	for {
		select {
		case a := <-s.queue:
			s.send(context.Background(), a)
		case <-s.ctx.Done():
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			for {
				select {
				case a := <-s.queue:
					if ctx.Err() != nil {
						s.dropped.Add(1)
						continue
					}
					s.send(ctx, a)
				default:
					return
				}
			}
		}
	}
}

// send writes one message, redialling once on a write error.
func (s *Syslog) send(ctx context.Context, a Alert) {
	msg := FormatSyslog(a, s.cfg.Hostname, s.cfg.AppName, s.cfg.SDID, s.cfg.Facility)
	if s.cfg.Network != "udp" {
		msg = append([]byte(strconv.Itoa(len(msg))+" "), msg...)
	}
	var err error
	for try := 0; try < 2; try++ {
		if s.conn == nil {
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			s.conn, err = s.dial(dctx)
			cancel()
			if err != nil {
				s.conn = nil
				continue
			}
		}
		s.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err = s.conn.Write(msg); err == nil {
			s.sent.Add(1)
			return
		}
		s.conn.Close()
		s.conn = nil
	}
	s.failed.Add(1)
	s.cfg.Log.Warn("syslog: sending alert", "id", a.ID, "err", err)
}

// dial connects to the collector, with TLS for "tls".
func (s *Syslog) dial(ctx context.Context) (net.Conn, error) {
	if s.cfg.Network != "tls" {
		return s.cfg.Dial(ctx, s.cfg.Network, s.cfg.Addr)
	}
	raw, err := s.cfg.Dial(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return nil, err
	}
	c := tls.Client(raw, s.cfg.TLS)
	if err := c.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("syslog tls handshake: %w", err)
	}
	return c, nil
}

// isLoopbackHost reports whether host, from a host:port, names this
// machine: localhost or a loopback address.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// maxSyslogMsg bounds a message so it fits one UDP datagram everywhere.
const maxSyslogMsg = 8192

// syslogSeverity maps a Severity to RFC 5424's numeric severity.
func syslogSeverity(s Severity) int {
	switch s {
	case Critical:
		return 2
	case High:
		return 3
	case Medium:
		return 4
	case Low:
		return 5
	default:
		return 6
	}
}

// FormatSyslog renders an alert as an RFC 5424 message:
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME - alert [SDID id=".." kind=".." severity=".."
//	agent=".." session=".." remote=".." count=".."] BOM summary
//
// TIMESTAMP is the alert's event time in UTC with microseconds; PRI is
// facility×8 plus critical 2, high 3, medium 4, low 5, info 6. Header
// fields are cut to their RFC lengths and non-printable ASCII replaced.
func FormatSyslog(a Alert, hostname, app, sdid string, facility int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "<%d>1 %s %s %s - alert [%s", facility*8+syslogSeverity(a.Severity),
		a.Time.UTC().Format("2006-01-02T15:04:05.000000Z"), headerField(hostname, 255), headerField(app, 48), headerField(sdid, 32))
	param := func(name, v string) {
		if v == "" {
			return
		}
		b.WriteString(" " + name + `="`)
		b.WriteString(sdEscape(v))
		b.WriteString(`"`)
	}
	param("id", a.ID)
	param("kind", string(a.Kind))
	param("severity", a.Severity.String())
	param("agent", a.Agent)
	param("session", a.Session)
	param("remote", a.Remote)
	param("count", strconv.Itoa(a.Count))
	b.WriteString("] \xef\xbb\xbf")
	b.WriteString(strings.ToValidUTF8(a.Summary, "\uFFFD"))
	out := []byte(b.String())
	if len(out) > maxSyslogMsg {
		out = []byte(strings.ToValidUTF8(string(out[:maxSyslogMsg]), ""))
	}
	return out
}

// headerField makes v a valid RFC 5424 header field: PRINTUSASCII, no
// spaces, at most n bytes, "-" if empty.
func headerField(v string, n int) string {
	var b strings.Builder
	for i := 0; i < len(v) && b.Len() < n; i++ {
		c := v[i]
		if c < 33 || c > 126 {
			c = '_'
		}
		b.WriteByte(c)
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String()
}

// sdEscape escapes '"', '\' and ']' in a PARAM-VALUE (RFC 5424 6.3.3).
func sdEscape(v string) string {
	v = strings.ToValidUTF8(v, "\uFFFD")
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `]`, `\]`)
	return r.Replace(v)
}
