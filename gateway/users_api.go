package gateway

import (
	"context"
	"net/http"
	"sync"
	"time"

	"strconv"
	"supportgate/gateway/audit"
	"supportgate/gateway/identity"
	"supportgate/gateway/users"
	"supportgate/session"
)

// UserView is an account as admins see it: never a hash or a secret.
type UserView struct {
	Name        string     `json:"name"`
	DisplayName string     `json:"display_name"`
	Role        string     `json:"role"`
	Team        string     `json:"team,omitempty"`
	Enrolled    bool       `json:"enrolled"`
	Locked      bool       `json:"locked"`
	LockedUntil *time.Time `json:"locked_until,omitempty"`
	CreatedAt   *time.Time `json:"created_at"`
}

func userView(u *users.User) UserView {
	return UserView{Name: u.Name, DisplayName: u.DisplayName, Role: u.Role, Team: u.Team,
		Enrolled: u.Enrolled, Locked: u.Disabled, LockedUntil: timePtr(u.LockedUntil), CreatedAt: timePtr(u.CreatedAt)}
}

// Accounts creates users and enrollment links on the gateway's store.
func (g *Gateway) Accounts() *Accounts {
	return &Accounts{Store: g.store, Hasher: g.hasher, Issuer: g.org, Now: g.clock.Now, Rand: g.rand}
}

func (g *Gateway) handleListUsers(w http.ResponseWriter, r *http.Request, _ *principal) {
	us, err := g.store.ListUsers(r.Context())
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	out := []UserView{}
	for _, u := range us {
		out = append(out, userView(u))
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out})
}

// handleAddUser creates an account that its owner enrolls through the
// one-time link in the answer. Admins never set other people's passwords.
func (g *Gateway) handleAddUser(w http.ResponseWriter, r *http.Request, p *principal) {
	var req struct {
		Name        string `json:"name"`
		DisplayName string `json:"display_name,omitempty"`
		Role        string `json:"role"`
		Team        string `json:"team,omitempty"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		g.writeErr(w, r, err)
		return
	}
	role, err := identity.ParseRole(req.Role)
	if err != nil {
		g.writeErr(w, r, errorf(http.StatusBadRequest, "role must be agent, supervisor, auditor or admin"))
		return
	}
	acct, err := g.Accounts().Create(r.Context(), NewUser{Name: req.Name, DisplayName: req.DisplayName, Role: role, Team: req.Team})
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	g.record(r.Context(), audit.Event{Type: "user.created", Actor: p.user.Name, Role: p.user.Role, Remote: clientAddr(r),
		Detail: map[string]string{"user": acct.User.Name, "user_role": acct.User.Role, "team": acct.User.Team}})
	writeJSON(w, http.StatusCreated, map[string]any{
		"user": userView(acct.User), "enroll_url": g.public.String() + "/enroll/" + acct.EnrollToken,
	})
}

// handleUpdateUser changes role, team or display name. A new role or team
// ends the user's staff websockets (see userAccessEnded).
func (g *Gateway) handleUpdateUser(w http.ResponseWriter, r *http.Request, p *principal) {
	var req struct {
		DisplayName *string `json:"display_name,omitempty"`
		Role        *string `json:"role,omitempty"`
		Team        *string `json:"team,omitempty"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		g.writeErr(w, r, err)
		return
	}
	u, err := g.store.GetUser(r.Context(), r.PathValue("name"))
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	detail := map[string]string{"user": u.Name}
	oldRole, oldTeam := u.Role, u.Team
	if req.Role != nil {
		role, err := identity.ParseRole(*req.Role)
		if err != nil {
			g.writeErr(w, r, errorf(http.StatusBadRequest, "role must be agent, supervisor, auditor or admin"))
			return
		}
		if u.Name == p.user.Name && role != admin {
			g.writeErr(w, r, errorf(http.StatusBadRequest, "admins cannot remove their own admin role"))
			return
		}
		detail["old_role"], detail["new_role"] = u.Role, string(role)
		u.Role = string(role)
	}
	if req.Team != nil {
		if err := checkField("team", *req.Team, 64); err != nil {
			g.writeErr(w, r, err)
			return
		}
		detail["team"] = *req.Team
		u.Team = *req.Team
	}
	if req.DisplayName != nil {
		if err := checkField("display name", *req.DisplayName, 100); err != nil || *req.DisplayName == "" {
			g.writeErr(w, r, errorf(http.StatusBadRequest, "display name must be 1 to 100 printable characters"))
			return
		}
		detail["display_name"] = *req.DisplayName
		u.DisplayName = *req.DisplayName
	}
	u.Version++
	if err := g.store.UpdateUser(r.Context(), u); err != nil {
		g.writeErr(w, r, err)
		return
	}
	// Open feeds, screen shares and SSH watches were admitted for the old
	// role or team; the user reconnects with the new one. An agent's own
	// sessions do not depend on the team: moving an agent keeps their
	// shell with the customer.
	if u.Role != oldRole || u.Team != oldTeam && u.Role != string(identity.RoleAgent) {
		g.userAccessEnded(u.Name, errAccessChanged)
	}
	if canRunSessions(oldRole) && !canRunSessions(u.Role) {
		// Without the role the user could neither use nor end the
		// sessions they run: they end now, as at a lock.
		n, err := g.broker.EndAgent(r.Context(), u.Name, session.EndRevoked, actorOf(p, r))
		if err != nil {
			g.log.Error("ending the sessions of a user no longer an agent", "user", u.Name, "err", err)
		}
		detail["sessions_ended"] = itoa(n)
	}
	g.record(r.Context(), audit.Event{Type: "user.updated", Actor: p.user.Name, Role: p.user.Role, Remote: clientAddr(r), Detail: detail})
	writeJSON(w, http.StatusOK, userView(u))
}

// handleLockUser locks an account: its tokens are revoked and every open
// session of it ends at once with reason locked.
func (g *Gateway) handleLockUser(w http.ResponseWriter, r *http.Request, p *principal) {
	ctx := r.Context()
	name, ok := g.otherUser(w, r, p, "admins cannot lock themselves")
	if !ok {
		return
	}
	u, n, err := g.lockUser(ctx, name, actorOf(p, r), nil)
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": userView(u), "sessions_ended": n})
}

// lockUser locks an account: it is disabled, its tokens are revoked, its
// staff websockets close, every open session of it ends at once with
// reason locked and Config.OnUserDropped is told. It returns the
// number of sessions ended. detail adds to the audit event (the alert that
// caused an automatic lock).
func (g *Gateway) lockUser(ctx context.Context, name string, by session.Actor, detail map[string]string) (*users.User, int, error) {
	// Marked first: a session this user is creating right now, authorized
	// before the lock but not yet stored when LockAgent looks, is ended by
	// handleCreateSession when it sees the mark.
	g.locked.set(name, true, by)
	u, err := g.setDisabled(ctx, name, true)
	if err != nil {
		g.locked.set(name, false, by)
		return nil, 0, err
	}
	// The account is disabled from here on, whatever fails below: its
	// websockets and the caller's connections go too, not just the
	// sessions where it is the agent.
	defer g.userAccessEnded(name, errAccountLocked)
	if err := g.store.DeleteUserTokens(ctx, name, ""); err != nil {
		return nil, 0, err
	}
	n, err := g.broker.LockAgent(ctx, name, by)
	d := map[string]string{"user": name, "sessions_ended": itoa(n)}
	for k, v := range detail {
		d[k] = v
	}
	g.record(ctx, audit.Event{Type: "user.locked", Actor: by.Name, Role: by.Role, Remote: by.Remote, Detail: d})
	return u, n, err
}

func (g *Gateway) handleUnlockUser(w http.ResponseWriter, r *http.Request, p *principal) {
	if err := decodeOptional(w, r, &struct{}{}); err != nil {
		g.writeErr(w, r, err)
		return
	}
	u, err := g.setDisabled(r.Context(), r.PathValue("name"), false)
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	g.locked.set(u.Name, false, session.Actor{})
	g.record(r.Context(), audit.Event{Type: "user.unlocked", Actor: p.user.Name, Role: p.user.Role, Remote: clientAddr(r),
		Detail: map[string]string{"user": u.Name}})
	writeJSON(w, http.StatusOK, map[string]any{"user": userView(u)})
}

// handleReenrollUser resets a user's sign-in (see Accounts.Reset) and
// answers with a new one-time enrollment link for its owner: the way back
// for someone who lost the phone with their authenticator, forgot their
// password, or whose enrollment link expired or was destroyed by a lock.
// What the user holds open ends as at a lock (staff websockets, SSH
// connections), and so do the sessions they run as the agent, revoked by
// the admin: a reset is what an admin does when credentials may be in
// someone else's hands, and nobody could use or end those sessions until
// the owner enrolls again. The account's lock, if any, stays.
func (g *Gateway) handleReenrollUser(w http.ResponseWriter, r *http.Request, p *principal) {
	ctx := r.Context()
	name, ok := g.otherUser(w, r, p, "admins cannot reset their own sign-in; ask another admin (or see `supportgate admin user reenroll --data` on the gateway's machine)")
	if !ok {
		return
	}
	acct, err := g.Accounts().Reset(ctx, name, "")
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	g.userAccessEnded(name, errSignInReset)
	n := 0
	if canRunSessions(acct.User.Role) {
		if n, err = g.broker.EndAgent(ctx, name, session.EndRevoked, actorOf(p, r)); err != nil {
			g.log.Error("ending the sessions of a user whose sign-in was reset", "user", name, "err", err)
		}
	}
	g.record(ctx, audit.Event{Type: "user.reenroll", Actor: p.user.Name, Role: p.user.Role, Remote: clientAddr(r),
		Detail: map[string]string{"user": name, "sessions_ended": itoa(n)}})
	writeJSON(w, http.StatusOK, map[string]any{
		"user": userView(acct.User), "enroll_url": g.public.String() + "/enroll/" + acct.EnrollToken,
		"sessions_ended": n,
	})
}

// otherUser reads the body (empty or {}) and the path's user name of an
// admin action that may not target the admin themselves, answering the
// request with self (400) or the decoding error when it may not go on.
func (g *Gateway) otherUser(w http.ResponseWriter, r *http.Request, p *principal, self string) (string, bool) {
	if err := decodeOptional(w, r, &struct{}{}); err != nil {
		g.writeErr(w, r, err)
		return "", false
	}
	name := r.PathValue("name")
	if name == p.user.Name {
		g.writeErr(w, r, errorf(http.StatusBadRequest, "%s", self))
		return "", false
	}
	return name, true
}

func (g *Gateway) setDisabled(ctx context.Context, name string, disabled bool) (*users.User, error) {
	u, err := g.store.GetUser(ctx, name)
	if err != nil {
		return nil, err
	}
	u.Disabled = disabled
	if !disabled {
		u.Failures, u.LockedUntil, u.LastFailure = 0, time.Time{}, time.Time{}
	}
	u.Version++
	if err := g.store.UpdateUser(ctx, u); err != nil {
		return nil, err
	}
	return u, nil
}

func itoa(n int) string { return strconv.Itoa(n) }

// lockedAgents are the accounts locked while this gateway runs. A lock
// ends the sessions the Broker holds; one being created at that moment is
// not among them yet, so its creation checks here once it is stored.
// After a restart the set is empty, and a locked account cannot sign in.
type lockedAgents struct {
	mu    sync.Mutex
	names map[string]session.Actor // who locked each
}

func (l *lockedAgents) set(name string, locked bool, by session.Actor) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !locked {
		delete(l.names, name)
		return
	}
	if l.names == nil {
		l.names = map[string]session.Actor{}
	}
	l.names[name] = by
}

// by reports whether name is locked in this run, and by whom: a session
// created during the lock is ended in that one's name, whichever of the
// two ends the agent's other sessions first.
func (l *lockedAgents) by(name string) (session.Actor, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	by, ok := l.names[name]
	return by, ok
}

// canRunSessions reports whether a user of role may run sessions (create
// them and use them as their agent).
func canRunSessions(role string) bool {
	return role == string(identity.RoleAgent) || role == string(identity.RoleSupervisor)
}
