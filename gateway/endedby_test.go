package gateway_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"supportgate/gateway"
	"supportgate/gateway/identity"
)

// TestConsentEndedBy: the customer's view of an ended session says who
// ended it as a kind, never a name: the customer, staff or the system.
func TestConsentEndedBy(t *testing.T) {
	e := newEnv(t)
	alice := e.addUser("alice", identity.RoleAgent, "")
	for _, tt := range []struct {
		name string
		end  func(s created, cu *customer)
		want string
	}{
		{"customer", func(s created, cu *customer) { cu.post("revoke", nil) }, "customer"},
		{"staff", func(s created, cu *customer) {
			e.do(alice, "POST", "/api/v1/sessions/"+s.ID+"/revoke", nil, 200, nil)
		}, "staff"},
		{"system", func(s created, cu *customer) { e.clock.Advance(6 * time.Minute) }, "system"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := e.newSession(alice, []string{"view"}, "5m")
			cu := e.customer(s.token())
			cu.open()
			cu.post("approve", map[string]any{"scopes": []string{"view"}})
			tt.end(s, cu)
			if _, v := cu.open(); v["state"] != "ended" || v["ended_by"] != tt.want {
				t.Errorf("view: state %v, ended_by %v; want ended, %s", v["state"], v["ended_by"], tt.want)
			}
		})
	}
}

// TestReservedUserNames: no user may take the names the gateway records
// for the customer, the system or the recorder.
func TestReservedUserNames(t *testing.T) {
	for _, name := range []string{"customer", "system", "recorder"} {
		if err := gateway.CheckUserName(name); err == nil || !strings.Contains(err.Error(), "reserved") {
			t.Errorf("CheckUserName(%q): %v, want reserved", name, err)
		}
	}
	if err := gateway.CheckUserName("customers"); err != nil {
		t.Errorf("CheckUserName(customers): %v", err)
	}
}

// TestBrowserEndedPageAfterReload: the customer presses Stop and the page
// says so; after a reload (or in another tab, or after Ctrl-C in the
// helper) it said the agent or their organisation had stopped it.
func TestBrowserEndedPageAfterReload(t *testing.T) {
	_, b := approvedInBrowser(t, newWebEnv(t))
	b.Do(chromedp.Click(chromedp.CSS("#stop")), chromedp.WaitVisible(chromedp.CSS("#ended")))
	b.Do(chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#ended")))
	if got := b.Text("#ended-why"); got != "You stopped the session." {
		t.Errorf("after a reload the page says %q", got)
	}
}
