package gateway_test

import (
	"context"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"supportgate/gateway"
	"supportgate/gateway/identity"
	"supportgate/session"
)

// TestBrowserConsoleCountdownGatewayTime: the gateway's clock runs an hour
// ahead of the wall clock (a session.SteadyClock after the wall clock was
// set back). The console counts a session's time left on the gateway's
// clock, from the Date header, as the customer's page does, not on the
// browser's: 30 minutes, not an hour and a half.
func TestBrowserConsoleCountdownGatewayTime(t *testing.T) {
	t.Parallel()
	w := newWebEnvWith(t, func(c *gateway.Config) {
		c.Clock = session.NewSteadyClock(session.RealClock{}, time.Now().Add(time.Hour))
	})
	secret := w.staff("alice", "Alice Example", identity.RoleAgent, "red")
	_, token, err := w.g.Broker().Create(context.Background(), session.Actor{Name: "alice", Role: "agent"},
		session.NewRequest{Agent: "alice", AgentName: "Alice Example", Customer: "Bob",
			Scopes: session.Scopes{{Kind: session.View}}, Duration: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	cu := w.customer(token)
	cu.open()
	if code, v := cu.post("approve", map[string]any{"scopes": []string{"view"}}); code != http.StatusOK {
		t.Fatalf("approve: %d %v", code, v)
	}
	agentB := w.browser()
	w.signIn(agentB, "alice", identity.TOTPCode(secret, time.Now()))
	agentB.Do(chromedp.WaitVisible(chromedp.CSS(`#session-rows tr[data-state="active"]`)))
	if got := agentB.Text(`#session-rows tr[data-state="active"]`); !regexp.MustCompile(`(^|[^:\d])(29:[0-5]\d|30:00) left`).MatchString(got) {
		t.Errorf("the console's row: %q, want about 30:00 left", got)
	}
}
