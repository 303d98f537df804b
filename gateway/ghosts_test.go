package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"supportgate/gateway"
	"supportgate/gateway/identity"
)

// TestLoginAnswersHideNames: wrong logins to a real account, to a name
// with no account, to an account not enrolled yet and to one an admin
// locked get the same answers, 401 four times, then the lockout's 429 with
// its time, and move /metrics the same way, so that no answer tells which
// user names exist. The lock lapses for every name alike, and the audit
// log still says what happened.
func TestLoginAnswersHideNames(t *testing.T) {
	e := newEnv(t)
	e.addUser("root", identity.RoleAdmin, "")
	e.addUser("alice", identity.RoleAgent, "")
	e.addUser("dora", identity.RoleAgent, "")
	e.do(e.users["root"], "POST", "/api/v1/users/dora/lock", nil, 200, nil)
	if _, err := e.g.Accounts().Create(context.Background(), gateway.NewUser{Name: "uma", Role: identity.RoleAgent}); err != nil {
		t.Fatal(err)
	}
	until := regexp.MustCompile(`until ([^"]+)"`)
	// answers makes seven wrong logins to name and returns what each
	// answer said (the lock's time replaced by the time it should be) and
	// how the login counters of /metrics moved.
	answers := func(name, password string) ([]string, string) {
		before := loginMetrics(t, e)
		var got []string
		start := e.clock.Now()
		for range 7 {
			code, body := e.send(nil, nil, "POST", "/api/v1/login", map[string]string{"user": name, "password": password, "totp": "000000"})
			// The lock's time, as an offset from the first attempt.
			answer := until.ReplaceAllStringFunc(string(body), func(m string) string {
				at, err := time.Parse(time.RFC3339, until.FindStringSubmatch(m)[1])
				if err != nil {
					t.Fatalf("lock time in %q: %v", body, err)
				}
				return "until start+" + at.Sub(start).String() + `"`
			})
			got = append(got, http.StatusText(code)+" "+answer)
			e.clock.Advance(time.Second)
		}
		return got, diffMetrics(before, loginMetrics(t, e))
	}
	e.clock.Advance(15 * time.Minute) // the per-address login limit is full again
	wantAnswers, wantMetrics := answers("alice", "wrong password here")
	e.clock.Advance(15 * time.Minute)
	if !strings.Contains(wantAnswers[0], "Unauthorized") || !strings.Contains(wantAnswers[6], "Too Many Requests") ||
		!strings.Contains(wantAnswers[6], "until start+15m4s") {
		t.Fatalf("a real account's answers: %q", wantAnswers)
	}
	for _, tt := range []struct{ name, password string }{
		{"nobody", "wrong password here"},
		{"uma", "wrong password here"},
		{"dora", "wrong password here"},
		{"dora", testPassword}, // the right password of a locked account changes nothing
	} {
		got, metrics := answers(tt.name, tt.password)
		for i := range got {
			if got[i] != wantAnswers[i] {
				t.Errorf("%s, answer %d: %q; a real account's: %q", tt.name, i+1, got[i], wantAnswers[i])
			}
		}
		if metrics != wantMetrics {
			t.Errorf("%s: /metrics moved %s; for a real account %s", tt.name, metrics, wantMetrics)
		}
		// Each name gets its own count, as an account would.
		e.clock.Advance(15*time.Minute + time.Second)
	}
	// After the lock, "nobody" is answered 401 again, like alice.
	if code, _ := e.send(nil, nil, "POST", "/api/v1/login", map[string]string{"user": "nobody", "password": "x", "totp": "000000"}); code != http.StatusUnauthorized {
		t.Errorf("after the lock lapsed: %d, want 401", code)
	}
	// The audit log tells the truth.
	audrey := e.addUser("audrey", identity.RoleAuditor, "")
	code, body := e.send(nil, audrey, "GET", "/api/v1/audit", nil)
	if code != 200 {
		t.Fatalf("audit export: %d", code)
	}
	var locked, lockedAndMore bool
	for line := range bytes.Lines(body) {
		var r struct {
			Type   string            `json:"type"`
			Actor  string            `json:"actor"`
			Detail map[string]string `json:"detail"`
		}
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatal(err)
		}
		if r.Type == "login.refused" && r.Actor == "dora" {
			locked = locked || r.Detail["why"] == "locked by admin"
			lockedAndMore = lockedAndMore || r.Detail["why"] == "locked by admin; too many failures"
		}
	}
	if !locked || !lockedAndMore {
		t.Errorf("the audit log does not say dora's logins were refused as locked by admin (%v, %v)", locked, lockedAndMore)
	}
}

// loginMetrics returns the gateway's counters and gauges from /metrics.
func loginMetrics(t *testing.T, e *env) map[string]float64 {
	t.Helper()
	_, body := e.send(nil, nil, "GET", "/metrics", nil)
	m := map[string]float64{}
	for line := range strings.Lines(string(body)) {
		// Every counter and gauge of the gateway's own, durations aside
		// (they differ run to run): any that moved differently for a name
		// without an account would tell.
		line = strings.TrimSpace(line)
		i := strings.LastIndexByte(line, ' ')
		if k, v := line[:max(i, 0)], line[i+1:]; i > 0 && strings.HasPrefix(k, "supportgate_") && !strings.Contains(k, "_seconds") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %q: %v", line, err)
			}
			m[k] = f
		}
	}
	return m
}

// diffMetrics says how each counter moved from before to after, in
// name order.
func diffMetrics(before, after map[string]float64) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(after)) {
		if d := after[k] - before[k]; d != 0 {
			fmt.Fprintf(&b, "%s+%g ", k, d)
		}
	}
	return b.String()
}
