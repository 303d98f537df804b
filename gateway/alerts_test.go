package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"supportgate/gateway"
	"supportgate/gateway/detect"
	"supportgate/gateway/identity"
)

func init() {
	addAccess(map[string]string{
		"GET /api/v1/alerts":               "supervisor admin",
		"GET /api/v1/alerts/{id}":          "supervisor admin",
		"POST /api/v1/alerts/{id}/ack":     "supervisor admin",
		"POST /api/v1/alerts/{id}/resolve": "supervisor admin",
	})
}

// TestDetectionIntegration: an agent opening sessions far above any normal
// rate raises a critical alert that reaches a webhook on loopback, signed,
// within two seconds, shows in the supervisors' alert list, and, with the
// auto-lock policy, locks the agent and ends their live session.
func TestDetectionIntegration(t *testing.T) {
	secret := []byte("webhook secret, 32 bytes long...")
	var mu sync.Mutex
	var got []detect.Alert
	arrived := make(chan time.Time, 16)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !detect.VerifySignature(secret, r.Header.Get(detect.HeaderTimestamp), body, r.Header.Get(detect.HeaderSignature)) {
			t.Errorf("webhook signature does not verify")
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var p detect.WebhookPayload
		if err := json.Unmarshal(body, &p); err != nil {
			t.Errorf("webhook body: %v: %s", err, body)
		}
		mu.Lock()
		got = append(got, p.Alert)
		mu.Unlock()
		arrived <- time.Now()
	}))
	defer recv.Close()
	hook, err := detect.NewWebhook(detect.WebhookConfig{URL: recv.URL, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, func(c *gateway.Config) {
		c.Detect = &detect.Config{Sinks: []detect.Sink{hook}}
		c.AutoLock = true
	})
	alice := e.addUser("alice", identity.RoleAgent, "red")
	sup := e.addUser("sam", identity.RoleSupervisor, "red")
	other := e.addUser("olga", identity.RoleSupervisor, "blue")

	live := e.newSession(alice, []string{"view"}, "30m")
	cu := e.customer(live.token())
	cu.open()
	if code, v := cu.post("approve", map[string]any{"scopes": []string{"view"}}); code != 200 {
		t.Fatalf("approve: %d %v", code, v)
	}
	start := time.Now()
	for i := 0; i < 40; i++ {
		code, _ := e.send(nil, alice, "POST", "/api/v1/sessions", map[string]any{"customer": "customer " + string(rune('A'+i%26)) + string(rune('a'+i/26)), "scopes": []string{"view"}, "duration": "30m"})
		if code == http.StatusForbidden || code == http.StatusUnauthorized {
			break // locked already
		}
		e.clock.Advance(10 * time.Second)
	}
	select {
	case at := <-arrived:
		if d := at.Sub(start); d > 2*time.Second {
			t.Errorf("webhook arrived %v after the burst started, want within 2s", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook delivery")
	}
	mu.Lock()
	first := got[0]
	mu.Unlock()
	if first.Agent != "alice" || first.Kind != detect.KindSessionBurst || first.Summary == "" {
		t.Fatalf("webhook alert: %+v", first)
	}

	var list struct {
		Alerts []detect.Alert `json:"alerts"`
	}
	e.do(sup, "GET", "/api/v1/alerts", nil, 200, &list)
	if len(list.Alerts) == 0 || list.Alerts[0].Agent != "alice" {
		t.Fatalf("supervisor's alerts: %+v", list.Alerts)
	}
	e.do(other, "GET", "/api/v1/alerts", nil, 200, &list)
	if len(list.Alerts) != 0 {
		t.Fatalf("another team's supervisor sees %d alerts", len(list.Alerts))
	}

	// Auto-lock: the live session ends with reason locked, the token dies.
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, data := e.send(nil, sup, "GET", "/api/v1/sessions/"+live.ID, nil)
		var v struct {
			State     string `json:"state"`
			EndReason string `json:"end_reason"`
		}
		json.Unmarshal(data, &v)
		if code == 200 && v.State == "ended" {
			if v.EndReason != "locked" {
				t.Fatalf("live session ended %s, want locked", v.EndReason)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("live session not ended by the auto-lock: %d %s", code, data)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, _ := e.send(nil, alice, "GET", "/api/v1/sessions", nil); code != http.StatusUnauthorized && code != http.StatusForbidden {
		t.Fatalf("locked agent's token: got %d", code)
	}
	var a detect.Alert
	e.do(sup, "GET", "/api/v1/alerts", nil, 200, &list)
	e.do(sup, "POST", "/api/v1/alerts/"+list.Alerts[0].ID+"/resolve", map[string]string{"note": "phished; password reset"}, 200, &a)
	if a.State != detect.Resolved || a.Note != "phished; password reset" || a.By != "sam" {
		t.Fatalf("resolved alert: %+v", a)
	}
}
