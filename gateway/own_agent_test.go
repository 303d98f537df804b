package gateway_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"supportgate/gateway/identity"
)

// TestAgentCannotOpenOwnLink: a browser signed in as the session's agent
// can neither open the consent link (binding it to the agent's browser)
// nor approve it; the link stays free for the customer. Another staff
// member's browser is not the agent's and is treated as any client.
func TestAgentCannotOpenOwnLink(t *testing.T) {
	e := newEnv(t)
	alice := e.addUser("alice", identity.RoleAgent, "red")
	c := e.newSession(alice, []string{"view"}, "30m")
	agentBrowser, _ := e.browserLogin(alice)

	own := &customer{e: e, c: agentBrowser, tok: c.token()}
	code, v := own.open()
	if code != http.StatusForbidden || !strings.Contains(v["error"].(string), "signed in as alice, the agent of this session") {
		t.Fatalf("the agent's own browser opening the link: %d %v, want 403", code, v)
	}
	if evs := e.auditOf("consent.refused"); len(evs) != 1 || evs[0].Actor != "alice" || evs[0].Detail["why"] != "opened by the session's own agent" {
		t.Errorf("consent.refused events: %+v", evs)
	}

	// The link is still free: the customer binds and approves it.
	cu := e.customer(c.token())
	if code, v := cu.open(); code != http.StatusOK {
		t.Fatalf("the customer opening the link after the agent's try: %d %v", code, v)
	}
	if code, v := cu.post("approve", map[string]any{"scopes": []string{"view"}}); code != http.StatusOK {
		t.Fatalf("approve: %d %v", code, v)
	}
}

// TestAgentCannotApproveOwnLink: a link opened in a browser that signs in
// as the session's agent afterwards cannot be approved there.
func TestAgentCannotApproveOwnLink(t *testing.T) {
	e := newEnv(t)
	alice := e.addUser("alice", identity.RoleAgent, "red")
	c := e.newSession(alice, []string{"view"}, "30m")
	cu := e.customer(c.token())
	if code, v := cu.open(); code != http.StatusOK {
		t.Fatalf("open: %d %v", code, v)
	}
	// The same browser signs in as alice: its cookie jar holds both.
	staff, _ := e.browserLogin(alice)
	u, _ := url.Parse(e.srv.URL)
	cu.c.Jar.SetCookies(u, staff.Jar.Cookies(u))
	if code, v := cu.post("approve", map[string]any{"scopes": []string{"view"}}); code != http.StatusForbidden {
		t.Fatalf("approve from a browser signed in as the agent: %d %v, want 403", code, v)
	}
}
