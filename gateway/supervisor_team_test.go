package gateway_test

import (
	"net/http"
	"testing"

	"supportgate/gateway/identity"
)

// TestSupervisorNeedsTeam checks that a supervisor sees and acts on the
// sessions of their own team only, and that having no team is not a team:
// a teamless supervisor must not reach the sessions of teamless agents.
func TestSupervisorNeedsTeam(t *testing.T) {
	tests := []struct {
		name      string
		supTeam   string
		agentTeam string
		want      int
	}{
		{"same team", "t1", "t1", http.StatusOK},
		{"other team", "t1", "t2", http.StatusNotFound},
		{"both teamless", "", "", http.StatusNotFound},
		{"teamless supervisor", "", "t1", http.StatusNotFound},
		{"teamless agent", "t1", "", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			alice := e.addUser("alice", identity.RoleAgent, tt.agentTeam)
			sam := e.addUser("sam", identity.RoleSupervisor, tt.supTeam)
			s := e.newSession(alice, []string{"view"}, "30m")
			cu := e.customer(s.token())
			cu.open()
			if code, v := cu.post("approve", map[string]any{"scopes": []string{"view"}}); code != http.StatusOK {
				t.Fatalf("approve: %d %v", code, v)
			}

			if code, data := e.send(nil, sam, "GET", "/api/v1/sessions/"+s.ID, nil); code != tt.want {
				t.Errorf("GET: got %d %s, want %d", code, data, tt.want)
			}
			var list struct {
				Sessions []struct {
					ID string `json:"id"`
				} `json:"sessions"`
			}
			e.do(sam, "GET", "/api/v1/sessions", nil, http.StatusOK, &list)
			if got, want := len(list.Sessions), map[bool]int{true: 1}[tt.want == http.StatusOK]; got != want {
				t.Errorf("list: got %d sessions, want %d", got, want)
			}
			if code, data := e.send(nil, sam, "POST", "/api/v1/sessions/"+s.ID+"/extend", map[string]string{"by": "15m"}); code != tt.want {
				t.Errorf("extend: got %d %s, want %d", code, data, tt.want)
			}
			if code, data := e.send(nil, sam, "POST", "/api/v1/sessions/"+s.ID+"/revoke", nil); code != tt.want {
				t.Errorf("revoke: got %d %s, want %d", code, data, tt.want)
			}
			st, _ := e.sessionState(alice, s.ID)
			if wantState := map[bool]string{true: "ended", false: "active"}[tt.want == http.StatusOK]; st != wantState {
				t.Errorf("session after the supervisor's revoke: got %s, want %s", st, wantState)
			}
		})
	}
}
