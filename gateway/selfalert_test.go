package gateway_test

import (
	"net/http"
	"testing"
	"time"

	"supportgate/gateway"
	"supportgate/gateway/detect"
	"supportgate/gateway/identity"
)

// TestSupervisorOwnAlerts: a supervisor also runs sessions, so the detector
// raises alerts about them. They used to land in the supervisor's own
// queue, where the one watched could resolve their own case; and a second
// resolve rewrote the first resolver's name and note.
func TestSupervisorOwnAlerts(t *testing.T) {
	e := newEnvWith(t, func(c *gateway.Config) { c.Detect = &detect.Config{} })
	adm := e.addUser("ada", identity.RoleAdmin, "")
	sam := e.addUser("sam", identity.RoleSupervisor, "red")
	for i := range 30 {
		e.send(nil, sam, "POST", "/api/v1/sessions", map[string]any{"customer": "c" + string(rune('a'+i%26)) + string(rune('a'+i/26)), "scopes": []string{"view"}, "duration": "30m"})
		e.clock.Advance(10 * time.Second)
	}
	var all struct{ Alerts []detect.Alert }
	for end := time.Now().Add(5 * time.Second); len(all.Alerts) == 0 && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		e.do(adm, "GET", "/api/v1/alerts", nil, 200, &all)
	}
	if len(all.Alerts) == 0 || all.Alerts[0].Agent != "sam" {
		t.Fatalf("no alert about sam: %+v", all.Alerts)
	}
	id := all.Alerts[0].ID
	var mine struct{ Alerts []detect.Alert }
	e.do(sam, "GET", "/api/v1/alerts", nil, 200, &mine)
	if len(mine.Alerts) != 0 {
		t.Errorf("sam sees %d alerts about himself", len(mine.Alerts))
	}
	if code, _ := e.send(nil, sam, "POST", "/api/v1/alerts/"+id+"/resolve", map[string]string{"note": "false positive"}); code != http.StatusNotFound {
		t.Errorf("sam resolving his own alert: %d, want 404", code)
	}
	var got detect.Alert
	e.do(adm, "POST", "/api/v1/alerts/"+id+"/resolve", map[string]string{"note": "looked into it"}, 200, &got)
	if code, _ := e.send(nil, adm, "POST", "/api/v1/alerts/"+id+"/resolve", map[string]string{"note": "n/a"}); code != http.StatusConflict {
		t.Errorf("a second resolve: %d, want 409", code)
	}
	e.do(adm, "GET", "/api/v1/alerts/"+id, nil, 200, &got)
	if got.By != "ada" || got.Note != "looked into it" {
		t.Errorf("after a second resolve: by %s, note %q; want the first kept", got.By, got.Note)
	}
}
