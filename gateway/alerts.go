package gateway

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"supportgate/gateway/audit"
	"supportgate/gateway/detect"
	"supportgate/session"
)

// Detection: the gateway feeds every stored audit record to a detector
// (package detect), records each alert it raises in the audit log, serves
// the alerts to supervisors and admins, and, when policy says so, locks an
// agent on a critical alert, which ends all of their sessions at once.

// MaxAlertNote bounds an incident note (it travels in an audit detail).
const MaxAlertNote = 1024

// lockQueue is how many automatic locks may wait for the locker.
const lockQueue = 64

func init() { routeSets = append(routeSets, (*Gateway).alertRoutes) }

func (g *Gateway) alertRoutes() []route {
	return []route{
		{"GET", "/api/v1/alerts", roles(supervisor, admin), g.handleListAlerts},
		{"GET", "/api/v1/alerts/{id}", roles(supervisor, admin), g.handleGetAlert},
		{"POST", "/api/v1/alerts/{id}/ack", roles(supervisor, admin), g.handleAlertState},
		{"POST", "/api/v1/alerts/{id}/resolve", roles(supervisor, admin), g.handleAlertState},
	}
}

// startDetector builds the detector from cfg.Detect, wiring its hooks to
// the gateway. Without cfg.Detect the alert routes answer 404.
func (g *Gateway) startDetector(cfg Config, reg prometheus.Registerer) error {
	if cfg.Detect == nil {
		return nil
	}
	dc := *cfg.Detect
	if dc.Now == nil {
		dc.Now = g.clock.Now
	}
	if dc.Log == nil {
		dc.Log = g.log
	}
	dc.OnAlert = g.alertRaised
	if cfg.AutoLock {
		g.locks = make(chan detect.Alert, lockQueue)
		dc.OnCritical = nil // locking needs the alert, so OnAlert does it
	}
	d, err := detect.New(dc)
	if err != nil {
		return err
	}
	g.detector = d
	prev := g.onAudit
	g.onAudit = func(r audit.Record) {
		if prev != nil {
			prev(r)
		}
		d.Observe(r)
	}
	return registerDetectMetrics(reg, d)
}

// alertRaised runs in the detector's goroutine for each new or escalated
// alert: it records the alert and queues an automatic lock if due. It never
// blocks on the locker.
func (g *Gateway) alertRaised(a detect.Alert) {
	g.record(context.Background(), audit.Event{
		Type: "alert.raised", Actor: "detector", Role: "system",
		Detail: map[string]string{"id": a.ID, "kind": string(a.Kind), "severity": a.Severity.String(), "agent": a.Agent},
	})
	if g.locks != nil && a.Severity == detect.Critical {
		select {
		case g.locks <- a:
		default:
			g.log.Error("automatic lock queue full", "agent", a.Agent, "alert", a.ID)
		}
	}
}

// runLocks locks agents named by critical alerts until ctx ends.
func (g *Gateway) runLocks(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-g.locks:
			u, err := g.store.GetUser(ctx, a.Agent)
			if err != nil || u.Disabled {
				continue
			}
			by := session.Actor{Name: "detector", Role: "system"}
			if _, n, err := g.lockUser(ctx, a.Agent, by, map[string]string{"alert": a.ID, "why": string(a.Kind)}); err != nil {
				g.log.Error("automatic lock failed", "agent", a.Agent, "err", err)
			} else {
				g.log.Warn("agent locked by the detector", "agent", a.Agent, "alert", a.ID, "sessions_ended", n)
			}
		}
	}
}

// alertVisible reports whether p may see alerts about agent: admins see
// all, supervisors their team's; a teamless supervisor none (sameTeam).
// Nobody but an admin sees alerts about themselves: a supervisor also
// runs sessions, and the one watched must not read, acknowledge or resolve
// their own case.
func (g *Gateway) alertVisible(ctx context.Context, p *principal, agent string) bool {
	if p.role == admin {
		return true
	}
	if agent == p.user.Name {
		return false
	}
	u, err := g.store.GetUser(ctx, agent)
	return err == nil && sameTeam(p.user.Team, u.Team)
}

func (g *Gateway) handleListAlerts(w http.ResponseWriter, r *http.Request, p *principal) {
	if g.detector == nil {
		g.writeErr(w, r, errorf(http.StatusNotFound, "detection is not enabled"))
		return
	}
	q := r.URL.Query()
	minSev := detect.Severity(0)
	if s := q.Get("severity"); s != "" {
		v, err := detect.ParseSeverity(s)
		if err != nil {
			g.writeErr(w, r, errorf(http.StatusBadRequest, "unknown severity %q", truncate(s, 16)))
			return
		}
		minSev = v
	}
	state, agentName := q.Get("state"), q.Get("agent")
	out := []detect.Alert{}
	for _, a := range g.detector.Alerts() {
		if a.Severity < minSev || (state != "" && string(a.State) != state) || (agentName != "" && a.Agent != agentName) {
			continue
		}
		if g.alertVisible(r.Context(), p, a.Agent) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b detect.Alert) int { return b.Raised.Compare(a.Raised) })
	writeJSON(w, http.StatusOK, map[string]any{"alerts": out})
}

func (g *Gateway) visibleAlert(r *http.Request, p *principal) (detect.Alert, error) {
	if g.detector == nil {
		return detect.Alert{}, errorf(http.StatusNotFound, "detection is not enabled")
	}
	a, ok := g.detector.Alert(r.PathValue("id"))
	if !ok || !g.alertVisible(r.Context(), p, a.Agent) {
		return detect.Alert{}, errorf(http.StatusNotFound, "no such alert")
	}
	return a, nil
}

func (g *Gateway) handleGetAlert(w http.ResponseWriter, r *http.Request, p *principal) {
	a, err := g.visibleAlert(r, p)
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// handleAlertState acknowledges or resolves an alert with a note, the
// incident record; both are audited.
func (g *Gateway) handleAlertState(w http.ResponseWriter, r *http.Request, p *principal) {
	var req struct {
		Note string `json:"note"`
	}
	if err := decodeOptional(w, r, &req); err != nil {
		g.writeErr(w, r, err)
		return
	}
	if err := checkField("note", req.Note, MaxAlertNote); err != nil {
		g.writeErr(w, r, err)
		return
	}
	a, err := g.visibleAlert(r, p)
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	resolve := r.URL.Path == "/api/v1/alerts/"+a.ID+"/resolve"
	typ := "alert.acknowledged"
	if resolve {
		a, err = g.detector.Resolve(a.ID, p.user.Name, req.Note)
		typ = "alert.resolved"
	} else {
		a, err = g.detector.Ack(a.ID, p.user.Name, req.Note)
	}
	if err != nil {
		g.writeErr(w, r, errorf(http.StatusConflict, "%v", err))
		return
	}
	g.record(r.Context(), audit.Event{Type: typ, Actor: p.user.Name, Role: string(p.role), Remote: clientAddr(r),
		Detail: map[string]string{"id": a.ID, "agent": a.Agent, "note": req.Note}})
	writeJSON(w, http.StatusOK, a)
}

func registerDetectMetrics(reg prometheus.Registerer, d *detect.Detector) error {
	fs := []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "supportgate_detect_events_observed_total", Help: "Audit records handed to the detector."},
			func() float64 { return float64(d.Stats().Observed) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "supportgate_detect_events_dropped_total", Help: "Audit records the detector dropped because its queue was full."},
			func() float64 { return float64(d.Stats().Dropped) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "supportgate_detect_alerts_open", Help: "Alerts not yet resolved."},
			func() float64 { return float64(d.Stats().Open) }),
	}
	for _, sev := range []detect.Severity{detect.Low, detect.Medium, detect.High, detect.Critical} {
		fs = append(fs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "supportgate_detect_alerts_total", Help: "Alerts raised, by severity when raised.",
			ConstLabels: prometheus.Labels{"severity": sev.String()},
		}, func() float64 { return float64(d.Stats().Alerts[sev]) }))
	}
	for _, c := range fs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("detect metrics: %w", err)
		}
	}
	return nil
}
