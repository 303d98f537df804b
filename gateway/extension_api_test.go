package gateway_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"supportgate/gateway"
	"supportgate/gateway/identity"
	"supportgate/session"
)

// longEnv is a gateway whose policy lets agents ask for up to the hard
// maximum, so that a swapped extension would be worth stealing.
func longEnv(t *testing.T) *env {
	return newEnvWith(t, func(c *gateway.Config) {
		c.Policy = session.Policy{MaxOpenPerAgent: 1000, MaxDuration: 8 * time.Hour}
	})
}

// timeBox returns how long the session's time box lasts, from the
// customer's view v.
func timeBox(t *testing.T, v map[string]any) time.Duration {
	t.Helper()
	approved, err1 := time.Parse(time.RFC3339Nano, v["approved_at"].(string))
	expires, err2 := time.Parse(time.RFC3339Nano, v["expires_at"].(string))
	if err1 != nil || err2 != nil {
		t.Fatalf("times in %v: %v, %v", v, err1, err2)
	}
	return expires.Sub(approved)
}

// TestExtendSwapRefused is the reviewer's sequence: the agent asks for 5m,
// the customer's page shows 5m, the agent asks again for 7h, and the
// customer says yes. The second request must be refused with 409 and the
// yes must grant the 5m the customer saw.
func TestExtendSwapRefused(t *testing.T) {
	e := longEnv(t)
	alice := e.addUser("alice", identity.RoleAgent, "")
	s := e.newSession(alice, []string{"view"}, "10m")
	cu := e.customer(s.token())
	cu.open()
	if code, v := cu.post("approve", map[string]any{"scopes": []string{"view"}}); code != 200 {
		t.Fatalf("approve: %d %v", code, v)
	}

	e.do(alice, "POST", "/api/v1/sessions/"+s.ID+"/extend", map[string]string{"by": "5m"}, 200, nil)
	_, v := cu.open()
	if x, _ := v["extension"].(map[string]any); x == nil || x["by"] != "5m0s" {
		t.Fatalf("customer's view of the pending extension: %v", v["extension"])
	}

	e.clock.Advance(time.Second)
	code, body := e.send(nil, alice, "POST", "/api/v1/sessions/"+s.ID+"/extend", map[string]string{"by": "7h"})
	if code != http.StatusConflict {
		t.Fatalf("second extend while one is pending: got %d %s, want 409", code, body)
	}
	var apiErr map[string]string
	if err := json.Unmarshal(body, &apiErr); err != nil || apiErr["error"] == "" || len(apiErr) != 1 ||
		bytes.Count(bytes.TrimSpace(body), []byte("\n")) != 0 {
		t.Fatalf("409 body %q, want one line of {\"error\": ...}", body)
	}

	code, v = cu.post("extension", map[string]any{"approve": true})
	if code != 200 {
		t.Fatalf("customer approves: %d %v", code, v)
	}
	if got, want := timeBox(t, v), 15*time.Minute; got != want {
		t.Fatalf("time box after approving the 5m shown: got %v, want %v", got, want)
	}
}

// TestExtensionAnswerBoundToRequest: an approval that names the request it
// answers (by and requested_at, as the consent view showed them) is
// refused with 409 when another request is pending now, and grants
// nothing; the matching answer works.
func TestExtensionAnswerBoundToRequest(t *testing.T) {
	e := longEnv(t)
	alice := e.addUser("alice", identity.RoleAgent, "")
	s := e.newSession(alice, []string{"view"}, "10m")
	cu := e.customer(s.token())
	cu.open()
	cu.post("approve", map[string]any{"scopes": []string{"view"}})

	e.do(alice, "POST", "/api/v1/sessions/"+s.ID+"/extend", map[string]string{"by": "5m"}, 200, nil)
	_, v := cu.open()
	stale := v["extension"].(map[string]any) // what a second tab still shows
	if code, v := cu.post("extension", map[string]any{"approve": true, "by": stale["by"], "requested_at": stale["requested_at"]}); code != 200 {
		t.Fatalf("approving the request shown: %d %v", code, v)
	}

	e.clock.Advance(time.Minute)
	e.do(alice, "POST", "/api/v1/sessions/"+s.ID+"/extend", map[string]string{"by": "7h"}, 200, nil)
	for _, body := range []map[string]any{
		{"approve": true, "by": stale["by"], "requested_at": stale["requested_at"]},
		{"approve": true, "by": stale["by"]},
		{"approve": true, "requested_at": stale["requested_at"]},
		{"approve": false, "by": stale["by"], "requested_at": stale["requested_at"]},
	} {
		code, v := cu.post("extension", body)
		if code != http.StatusConflict {
			t.Fatalf("answer %v to a replaced request: got %d %v, want 409", body, code, v)
		}
	}
	_, v = cu.open()
	if got, want := timeBox(t, v), 15*time.Minute; got != want {
		t.Fatalf("time box after the refused answers: got %v, want %v", got, want)
	}
	if x, _ := v["extension"].(map[string]any); x == nil || x["by"] != "7h0m0s" {
		t.Fatalf("pending extension after the refused answers: %v, want 7h still pending", v["extension"])
	}
	if code, v := cu.post("extension", map[string]any{"approve": true, "by": "soon"}); code != http.StatusBadRequest {
		t.Fatalf("malformed by: got %d %v, want 400", code, v)
	}
}
