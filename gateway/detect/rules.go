package detect

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"supportgate/gateway/audit"
)

// stamp is one event kept in a sliding window.
type stamp struct {
	t    time.Time
	seq  uint64
	note string // customer (sessions) or address (auth failures)
	flag bool   // sessions: the customer was new
}

// prune drops stamps older than t-window.
func prune(s []stamp, t time.Time, window time.Duration) []stamp {
	i := 0
	for i < len(s) && t.Sub(s[i].t) > window {
		i++
	}
	if i == 0 {
		return s
	}
	return append(s[:0], s[i:]...)
}

const maxWindow = 1024 // stamps kept per window

func push(s []stamp, st stamp) []stamp {
	if len(s) >= maxWindow {
		s = append(s[:0], s[1:]...)
	}
	return append(s, st)
}

type loginCtx struct {
	t        time.Time
	addr     string
	newNet   bool
	offHours bool
}

type sessState struct {
	customer string
	start    time.Time
	bytesOut float64
	ended    bool
	alerted  map[string]bool // risky categories and "bulk" already raised
}

// agentState is what the worker keeps per agent: the persisted Baseline and
// windows that only matter for minutes.
type agentState struct {
	name     string
	base     *Baseline
	dirty    bool
	created  []stamp
	denials  []stamp
	mfa      []stamp
	pwfail   []stamp
	active   map[string]stamp // address → last authenticated activity
	login    loginCtx
	sessions map[string]*sessState
}

// fold is the open alert that repeats of one agent and key fold into.
type fold struct {
	alert *Alert
	last  time.Time // event time of the last occurrence
}

const maxSessions = 512 // sessions tracked per agent

func (d *Detector) agent(name string) *agentState {
	if a, ok := d.agents[name]; ok {
		return a
	}
	a := &agentState{name: name, active: map[string]stamp{}, sessions: map[string]*sessState{}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	blob, err := d.store.Load(ctx, name)
	cancel()
	switch {
	case err == nil:
		b, derr := DecodeBaseline(blob)
		if derr != nil {
			d.log.Warn("discarding stored baseline", "agent", name, "err", derr)
			b = newBaseline()
		}
		a.base = b
	case errors.Is(err, ErrNoBaseline):
		a.base = newBaseline()
	default:
		d.log.Warn("loading baseline", "agent", name, "err", err)
		a.base = newBaseline()
	}
	d.agents[name] = a
	d.mu.Lock()
	d.nAgent = len(d.agents)
	d.mu.Unlock()
	return a
}

// subject returns the agent a record is about, or "".
func subject(rec audit.Record) string {
	var name string
	switch {
	case strings.HasPrefix(rec.Type, "session."), strings.HasPrefix(rec.Type, "consent."), strings.HasPrefix(rec.Type, "extension."):
		name = rec.Detail["agent"]
	case rec.Type == "shell.command", rec.Type == "channel.closed":
		name = rec.Detail["agent"]
		if name == "" {
			name = rec.Actor
		}
	case rec.Type == "user.lockout":
		name = rec.Detail["user"]
	case strings.HasPrefix(rec.Type, "login."), rec.Type == "logout":
		name = rec.Actor
	}
	switch name {
	case "", "unknown", audit.SystemActor, "customer":
		return ""
	}
	return name
}

func (d *Detector) process(rec audit.Record) {
	name := subject(rec)
	if name == "" {
		return
	}
	a := d.agent(name)
	t := rec.Time
	d.rollover(a, t)
	a.dirty = true
	switch rec.Type {
	case "login.success":
		d.concurrent(a, rec)
		d.onLogin(a, rec)
	case "logout":
		d.concurrent(a, rec)
		delete(a.active, rec.Remote)
	case "login.mfa_failure":
		d.authFailure(a, rec, &a.mfa, KindMFAFailures)
	case "login.failure":
		if rec.Detail["why"] == "wrong password" {
			d.authFailure(a, rec, &a.pwfail, KindPasswordGuess)
		}
	case "session.created":
		if rec.Actor == name {
			d.concurrent(a, rec)
		}
		d.onCreated(a, rec)
	case "session.approved":
		d.onApproved(a, rec)
	case "session.ended":
		d.onEnded(a, rec)
	case "shell.command":
		d.concurrent(a, rec)
		d.onCommand(a, rec)
	case "channel.closed":
		d.concurrent(a, rec)
		d.onChannelClosed(a, rec)
	}
}

// rollover closes the baseline's hour and day when t has left them.
func (d *Detector) rollover(a *agentState, t time.Time) {
	b := a.base
	lt := t.In(d.loc)
	hour := time.Date(lt.Year(), lt.Month(), lt.Day(), lt.Hour(), 0, 0, 0, d.loc)
	day := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, d.loc)
	if hour.After(b.Hour) {
		if b.HourSessions > 0 {
			b.HourlyRate.Add(float64(b.HourSessions))
		}
		b.Hour, b.HourSessions = hour, 0
	}
	if day.After(b.Day) {
		if b.DaySessions > 0 {
			b.DailyCustomers.Add(float64(len(b.DayCustomers)))
			b.DenialRate.Add(float64(b.DayDenials) / float64(b.DaySessions))
			b.Days++
		}
		b.Day, b.DayCustomers, b.DayNew, b.DaySessions, b.DayDenials, b.DayBytesTotal = day, nil, 0, 0, 0, 0
	}
}

// activity counts an event into the hour-of-day histogram.
func (d *Detector) activity(b *Baseline, t time.Time) {
	b.Hours[t.In(d.loc).Hour()]++
	b.Activity++
	var total float64
	for _, h := range b.Hours {
		total += h
	}
	if total > 4096 {
		for i := range b.Hours {
			b.Hours[i] /= 2
		}
	}
}

// offHours reports whether t falls in an hour the agent is rarely active,
// once enough activity has been seen to say.
func (d *Detector) offHours(b *Baseline, t time.Time) bool {
	if b.Activity < d.rules.LearnActivity {
		return false
	}
	var total float64
	for _, h := range b.Hours {
		total += h
	}
	return total > 0 && b.Hours[t.In(d.loc).Hour()]/total < d.rules.OffHoursShare
}

// usualHours describes the agent's working hours, e.g. "08:00–18:00".
func (d *Detector) usualHours(b *Baseline) string {
	var total float64
	for _, h := range b.Hours {
		total += h
	}
	first, last := -1, -1
	for i, h := range b.Hours {
		if total > 0 && h/total >= d.rules.OffHoursShare {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return "unknown"
	}
	return fmt.Sprintf("%02d:00–%02d:00 %s", first, last+1, d.loc)
}

// parseAddr reads an audit record's address, with or without a port.
func parseAddr(addr string) (netip.Addr, bool) {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			return netip.Addr{}, false
		}
		ip = ap.Addr()
	}
	return ip.Unmap(), true
}

// network is the /24 of an IPv4 address or the /48 of an IPv6 one.
func network(addr string) string {
	ip, ok := parseAddr(addr)
	if !ok {
		return addr
	}
	bits := 48
	if ip.Is4() {
		bits = 24
	}
	p, err := ip.Prefix(bits)
	if err != nil {
		return addr
	}
	return p.String()
}

func (d *Detector) onLogin(a *agentState, rec audit.Record) {
	b, t := a.base, rec.Time
	addr, ua := rec.Remote, rec.Detail["user_agent"]
	judged := b.Logins >= d.rules.LearnLogins
	_, knownNet := b.Networks[network(addr)]
	newNet := judged && addr != "" && !knownNet
	newUA := judged && ua != "" && len(b.UserAgents) > 0 && b.UserAgents[ua].IsZero()
	off := d.offHours(b, t)
	a.login = loginCtx{t: t, addr: addr, newNet: newNet, offHours: off}
	if newNet && off {
		what := fmt.Sprintf("%s signed in at %s from %s, a network never seen for them, outside their usual hours (%s)",
			a.name, t.In(d.loc).Format("15:04 MST"), addr, d.usualHours(b))
		if newUA {
			what += "; with a browser never seen for them"
		}
		d.raise(a, rec, KindUnusualLogin, "", High, what)
	}
	b.Logins++
	d.activity(b, t)
	if addr != "" {
		see(b.Addresses, addr, t, maxAddresses)
		see(b.Networks, network(addr), t, maxAddresses)
	}
	if ua != "" {
		see(b.UserAgents, ua, t, maxAddresses)
	}
}

// concurrent notes authenticated activity from rec.Remote and raises
// concurrent_addresses if another network was active moments ago.
func (d *Detector) concurrent(a *agentState, rec audit.Record) {
	addr, t := rec.Remote, rec.Time
	if addr == "" {
		return
	}
	net := network(addr)
	var others []string
	var evidence []uint64
	for o, st := range a.active {
		if t.Sub(st.t) > d.rules.ConcurrentWindow || t.Before(st.t.Add(-d.rules.ConcurrentWindow)) {
			delete(a.active, o)
			continue
		}
		if network(o) != net {
			others = append(others, o)
			evidence = append(evidence, st.seq)
		}
	}
	a.active[addr] = stamp{t: t, seq: rec.Seq}
	if len(others) == 0 {
		return
	}
	sort.Strings(others)
	what := fmt.Sprintf("%s was active from %s and from %s within %s; one account should not be in two places at once",
		a.name, strings.Join(others, ", "), addr, minutes(d.rules.ConcurrentWindow))
	d.raise(a, rec, KindConcurrentAddr, "", High, what, evidence...)
}

func (d *Detector) authFailure(a *agentState, rec audit.Record, w *[]stamp, kind Kind) {
	*w = prune(*w, rec.Time, d.rules.AuthWindow)
	*w = push(*w, stamp{t: rec.Time, seq: rec.Seq, note: rec.Remote})
	n, limit := len(*w), d.rules.MFAMin
	what := "second-factor"
	sev := High
	if kind == KindPasswordGuess {
		limit, what, sev = d.rules.PasswordMin, "password", Medium
	}
	if n < limit {
		return
	}
	addrs := map[string]bool{}
	var ev []uint64
	for _, s := range *w {
		addrs[s.note] = true
		ev = append(ev, s.seq)
	}
	list := slices.Sorted(func(yield func(string) bool) {
		for k := range addrs {
			if !yield(k) {
				return
			}
		}
	})
	msg := fmt.Sprintf("%d %s failures for %s in %s from %s", n, what, a.name, span((*w)[0].t, rec.Time), strings.Join(list, ", "))
	if kind == KindMFAFailures {
		msg += "; whoever is trying has their password"
	}
	d.raise(a, rec, kind, "", sev, msg, ev...)
}

func (d *Detector) onCreated(a *agentState, rec audit.Record) {
	b, t := a.base, rec.Time
	cust := rec.Detail["customer"]
	_, known := b.Customers[cust]
	isNew := cust != "" && !known
	a.created = prune(a.created, t, d.rules.BurstWindow)
	a.created = push(a.created, stamp{t: t, seq: rec.Seq, note: cust, flag: isNew})
	if rec.Session != "" {
		if len(a.sessions) >= maxSessions {
			evictSession(a.sessions)
		}
		a.sessions[rec.Session] = &sessState{customer: cust, start: t, alerted: map[string]bool{}}
	}

	// session_burst
	med := b.HourlyRate.Median(5, d.rules.DefaultHourlyRate)
	spread := b.HourlyRate.Spread(5, 1)
	limit := max(d.rules.BurstMin, int(math.Ceil(med+d.rules.BurstSpread*spread)))
	if n := len(a.created); n >= limit {
		newN := 0
		var ev []uint64
		for _, s := range a.created {
			if s.flag {
				newN++
			}
			ev = append(ev, s.seq)
		}
		what := fmt.Sprintf("%s opened %d sessions in %s; their usual rate is about %s an hour; %d were with new customers",
			a.name, n, span(a.created[0].t, t), round(med), newN)
		sev := High
		suspectLogin := !a.login.t.IsZero() && t.Sub(a.login.t) < 12*time.Hour && (a.login.newNet || a.login.offHours)
		if suspectLogin {
			var why []string
			if a.login.offHours {
				why = append(why, "outside their usual hours")
			}
			if a.login.newNet {
				why = append(why, "from a new network ("+a.login.addr+")")
			}
			what += "; they signed in " + strings.Join(why, " and ")
		}
		if (suspectLogin && 2*newN >= n) || n >= 3*limit {
			sev = Critical
		}
		d.raise(a, rec, KindSessionBurst, "", sev, what, ev...)
	}

	// many_customers
	if cust != "" && !slices.Contains(b.DayCustomers, cust) && len(b.DayCustomers) < maxCustomers {
		b.DayCustomers = append(b.DayCustomers, cust)
		if isNew {
			b.DayNew++
		}
	}
	dmed := b.DailyCustomers.Median(5, d.rules.DefaultDailyCustomers)
	dspread := b.DailyCustomers.Spread(5, 1.5)
	dlimit := max(d.rules.CustomersMin, int(math.Ceil(dmed+d.rules.CustomersSpread*dspread)))
	if n := len(b.DayCustomers); n >= dlimit && isNew {
		newToday := b.DayNew
		what := fmt.Sprintf("%s has worked with %d customers today (%s); usually about %s a day; %d of them new",
			a.name, n, b.Day.Format("2006-01-02"), round(dmed), min(newToday, n))
		d.raise(a, rec, KindManyCustomers, "", Medium, what)
	}

	// learn
	b.Sessions++
	b.HourSessions++
	b.DaySessions++
	d.activity(b, t)
	if cust != "" {
		see(b.Customers, cust, t, maxCustomers)
	}
}

func evictSession(m map[string]*sessState) {
	var oldK string
	var old *sessState
	for k, s := range m {
		if old == nil || (s.ended && !old.ended) || (s.ended == old.ended && s.start.Before(old.start)) || (s.ended == old.ended && s.start.Equal(old.start) && k < oldK) {
			oldK, old = k, s
		}
	}
	delete(m, oldK)
}

func (d *Detector) onEnded(a *agentState, rec audit.Record) {
	b, t := a.base, rec.Time
	if s := a.sessions[rec.Session]; s != nil && !s.ended {
		s.ended = true
		if s.bytesOut > 0 {
			b.BytesOut.Add(math.Log2(1 + s.bytesOut))
		}
	}
	if rec.Detail["reason"] != "denied" {
		return
	}
	b.DayDenials++
	a.denials = prune(a.denials, t, d.rules.DenialWindow)
	a.denials = push(a.denials, stamp{t: t, seq: rec.Seq})
	rate := b.DenialRate.Median(5, 0.05)
	sessions := 0
	for _, s := range a.created {
		if t.Sub(s.t) <= d.rules.DenialWindow {
			sessions++
		}
	}
	n := len(a.denials)
	limit := max(d.rules.DenialMin, int(math.Ceil(rate*float64(sessions)+3)))
	if n < limit {
		return
	}
	var ev []uint64
	for _, s := range a.denials {
		ev = append(ev, s.seq)
	}
	sev := Medium
	if n >= 2*limit {
		sev = High
	}
	usual := "almost none of their requests are refused"
	if rate >= 0.005 {
		usual = fmt.Sprintf("about %s%% of their requests are refused", round(100*rate))
	}
	what := fmt.Sprintf("%d customers refused %s's sessions in %s; usually %s", n, a.name, span(a.denials[0].t, t), usual)
	d.raise(a, rec, KindDenials, "", sev, what, ev...)
}

func (d *Detector) session(a *agentState, rec audit.Record) *sessState {
	s := a.sessions[rec.Session]
	if s == nil {
		if len(a.sessions) >= maxSessions {
			evictSession(a.sessions)
		}
		s = &sessState{start: rec.Time, alerted: map[string]bool{}}
		a.sessions[rec.Session] = s
	}
	return s
}

func (d *Detector) onCommand(a *agentState, rec audit.Record) {
	cmd := rec.Detail["command"]
	// The gateway classified the whole line ("risk") where the audit log
	// holds only its start; the text is classified too, for records
	// without it.
	matches := ClassifyCommand(cmd)
	for _, m := range categoryMatches(rec.Detail["risk"]) {
		if !slices.ContainsFunc(matches, func(x RiskyMatch) bool { return x.Category == m.Category }) {
			matches = append(matches, m)
		}
	}
	if len(matches) == 0 {
		return
	}
	s := d.session(a, rec)
	for _, m := range matches {
		if s.alerted[m.Category] {
			continue
		}
		s.alerted[m.Category] = true
		shown := cmd
		if len(shown) > 200 {
			shown = shown[:200] + "…"
		}
		what := fmt.Sprintf("%s ran a command that %s%s (session %s): %q", a.name, m.What, onCustomer(s.customer), rec.Session, shown)
		d.raise(a, rec, KindRiskyCommand, rec.Session+"/"+m.Category, m.Severity, what)
	}
}

func onCustomer(c string) string {
	if c == "" {
		return ""
	}
	return " on customer " + c + "'s machine"
}

func (d *Detector) onChannelClosed(a *agentState, rec audit.Record) {
	n, err := strconv.ParseUint(strings.TrimSpace(rec.Detail["bytes_out"]), 10, 64)
	if err != nil || n == 0 {
		return
	}
	s := d.session(a, rec)
	s.bytesOut += float64(n)
	b := a.base
	med := b.BytesOut.Median(5, math.Log2(float64(d.rules.DefaultBulkBytes)))
	spread := b.BytesOut.Spread(5, 1.5)
	limit := math.Max(float64(d.rules.BulkMinBytes), math.Exp2(med+d.rules.BulkSpread*spread))
	if s.bytesOut < limit {
		return
	}
	sev := High
	if s.bytesOut >= float64(d.rules.BulkCriticalBytes) {
		sev = Critical
	}
	if s.alerted["bulk"] && sev == High {
		return
	}
	s.alerted["bulk"] = true
	what := fmt.Sprintf("%s pulled %s out%s in session %s; their usual is about %s a session",
		a.name, bytesText(s.bytesOut), onCustomer(s.customer), rec.Session, bytesText(math.Exp2(med)))
	d.raise(a, rec, KindBulkOutput, rec.Session, sev, what)
}

// raise records an alert, or folds it into the open alert of the same agent,
// kind and key raised within the cooldown.
func (d *Detector) raise(a *agentState, rec audit.Record, kind Kind, key string, sev Severity, summary string, evidence ...uint64) {
	fk := a.name + "\x00" + string(kind) + "\x00" + key
	now := d.now()
	evidence = append(evidence, rec.Seq)
	d.mu.Lock()
	f := d.folds[fk]
	if f != nil && f.alert.State != Resolved && rec.Time.Sub(f.last) < d.rules.Cooldown {
		al := f.alert
		f.last = rec.Time
		al.Count++
		al.Summary = summary
		al.Updated = now
		for _, s := range evidence {
			if len(al.Evidence) < MaxEvidence && !slices.Contains(al.Evidence, s) {
				al.Evidence = append(al.Evidence, s)
			}
		}
		rose := sev > al.Severity
		if rose {
			al.Severity = sev
		}
		out := al.clone()
		d.mu.Unlock()
		d.saveAlerts()
		if rose {
			d.deliver(out)
		}
		return
	}
	d.nextID++
	slices.Sort(evidence)
	evidence = slices.Compact(evidence)
	if len(evidence) > MaxEvidence {
		evidence = evidence[len(evidence)-MaxEvidence:]
	}
	al := &Alert{
		ID: "a" + strconv.Itoa(d.nextID), Time: rec.Time, Raised: now, Kind: kind, Severity: sev,
		Agent: a.name, Session: rec.Session, Remote: rec.Remote, Summary: summary,
		Evidence: evidence, Count: 1, State: Open, Updated: now,
	}
	d.alerts = append(d.alerts, al)
	d.byID[al.ID] = al
	d.raised[sev]++
	d.folds[fk] = &fold{alert: al, last: rec.Time}
	d.pruneAlertsLocked()
	out := al.clone()
	d.mu.Unlock()
	d.saveAlerts()
	d.deliver(out)
}

// pruneAlertsLocked keeps at most MaxAlerts, dropping the oldest resolved
// alert first, else the oldest.
func (d *Detector) pruneAlertsLocked() {
	for len(d.alerts) > d.cfg.MaxAlerts {
		i := slices.IndexFunc(d.alerts, func(a *Alert) bool { return a.State == Resolved })
		if i < 0 {
			i = 0
		}
		gone := d.alerts[i]
		delete(d.byID, gone.ID)
		for k, f := range d.folds {
			if f.alert == gone {
				delete(d.folds, k)
			}
		}
		d.alerts = slices.Delete(d.alerts, i, i+1)
	}
}

func (d *Detector) deliver(a Alert) {
	d.log.Info("alert", "id", a.ID, "kind", a.Kind, "severity", a.Severity, "agent", a.Agent, "summary", a.Summary)
	if d.cfg.OnAlert != nil {
		d.cfg.OnAlert(a)
	}
	for _, s := range d.cfg.Sinks {
		s.Send(a)
	}
	if a.Severity == Critical && d.cfg.OnCritical != nil {
		d.cfg.OnCritical(a.Agent)
	}
}

// span describes the time from a to b in minutes, at least one.
func span(a, b time.Time) string { return minutes(b.Sub(a)) }

func minutes(d time.Duration) string {
	m := int(math.Ceil(d.Minutes()))
	switch {
	case m <= 1:
		return "1 minute"
	case m < 120:
		return fmt.Sprintf("%d minutes", m)
	default:
		return fmt.Sprintf("%d hours", int(math.Round(float64(m)/60)))
	}
}

// round prints a rate as a person would say it.
func round(v float64) string {
	switch {
	case v < 1:
		return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64)
	default:
		return strconv.Itoa(int(math.Round(v)))
	}
}

func bytesText(n float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f B", n)
	}
	return fmt.Sprintf("%.1f %s", n, units[i])
}
