package gateway

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"supportgate/gateway/rtc"
)

// metrics are the gateway's Prometheus series. They carry no user names,
// session ids or other identifying labels.
type metrics struct {
	handler          http.Handler
	requests         *prometheus.CounterVec
	latency          *prometheus.HistogramVec
	logins           *prometheus.CounterVec
	sessionsCreated  prometheus.Counter
	sessionsApproved prometheus.Counter
	sessionsEnded    *prometheus.CounterVec
	auditEvents      prometheus.Counter
	auditFailures    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, gather prometheus.Gatherer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "supportgate_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "supportgate_http_request_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "supportgate_logins_total", Help: "Login attempts by result.",
		}, []string{"result"}),
		sessionsCreated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "supportgate_sessions_created_total", Help: "Sessions requested by agents.",
		}),
		sessionsApproved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "supportgate_sessions_approved_total", Help: "Sessions approved by customers.",
		}),
		sessionsEnded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "supportgate_sessions_ended_total", Help: "Sessions ended, by reason.",
		}, []string{"reason"}),
		auditEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "supportgate_audit_events_total", Help: "Audit events appended.",
		}),
		auditFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "supportgate_audit_failures_total", Help: "Audit events that could not be stored.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.logins, m.sessionsCreated,
		m.sessionsApproved, m.sessionsEnded, m.auditEvents, m.auditFailures} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.handler = promhttp.HandlerFor(gather, promhttp.HandlerOpts{})
	return m, nil
}

// registerBrokerGauges exposes the broker's count of open sessions and of
// ended sessions whose end is not stored yet.
func (m *metrics) registerBrokerGauges(reg prometheus.Registerer, open, unsaved func() int) error {
	if err := reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "supportgate_sessions_open", Help: "Sessions requested or active now.",
	}, func() float64 { return float64(open()) })); err != nil {
		return err
	}
	return reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "supportgate_session_ends_unsaved",
		Help: "Sessions ended here whose end could not be stored yet (a full disk?): the store still has them open, and a restart would bring them back.",
	}, func() float64 { return float64(unsaved()) }))
}

// registerRelay exposes the screen share relay's counts.
func (m *metrics) registerRelay(reg prometheus.Registerer, stats func() rtc.Stats) error {
	return reg.Register(&relayCollector{
		stats: stats,
		rooms: prometheus.NewDesc("supportgate_screen_rooms_open",
			"Screen share rooms (sessions with a share or a viewer connected) now.", nil, nil),
		packets: prometheus.NewDesc("supportgate_screen_packets_total",
			"RTP packets received from customers' screen shares and relayed.", nil, nil),
		frames: prometheus.NewDesc("supportgate_screen_frames_recorded_total",
			"Screen share video frames recorded.", nil, nil),
		dropped: prometheus.NewDesc("supportgate_screen_record_dropped_packets_total",
			"Screen share packets relayed to the viewers but dropped from the recording because it fell behind (the recording says so too).", nil, nil),
	})
}

// relayCollector reads the relay's counts once per scrape (Relay.Stats
// takes the relay's lock and visits every room).
type relayCollector struct {
	stats                           func() rtc.Stats
	rooms, packets, frames, dropped *prometheus.Desc
}

func (c *relayCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.rooms
	ch <- c.packets
	ch <- c.frames
	ch <- c.dropped
}

func (c *relayCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	ch <- prometheus.MustNewConstMetric(c.rooms, prometheus.GaugeValue, float64(st.Rooms))
	ch <- prometheus.MustNewConstMetric(c.packets, prometheus.CounterValue, float64(st.Packets))
	ch <- prometheus.MustNewConstMetric(c.frames, prometheus.CounterValue, float64(st.Frames))
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(st.RecordDropped))
}

// statusWriter remembers the status code for the request counter.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection (websockets).
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Hijack hands the connection to the websocket upgrader, which asserts
// http.Hijacker on the writer itself instead of using Unwrap.
func (s *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if s.code == 0 {
		s.code = http.StatusSwitchingProtocols
	}
	return http.NewResponseController(s.ResponseWriter).Hijack()
}

func (m *metrics) observe(route string, code int, d time.Duration) {
	if code == 0 {
		code = http.StatusOK
	}
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}
