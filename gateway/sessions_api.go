package gateway

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"supportgate/session"
)

// SessionView is a session as the API shows it to staff. Unset times are
// null, never a zero date.
type SessionView struct {
	ID               string         `json:"id"`
	State            session.State  `json:"state"`
	EndReason        string         `json:"end_reason"`
	EndedBy          string         `json:"ended_by,omitempty"`
	Agent            string         `json:"agent"`
	AgentName        string         `json:"agent_name"`
	Team             string         `json:"team,omitempty"`
	Customer         string         `json:"customer"`
	Reason           string         `json:"reason,omitempty"`
	Scopes           session.Scopes `json:"scopes"`
	RequestedScopes  session.Scopes `json:"requested_scopes"`
	Duration         string         `json:"duration"`
	VerificationCode string         `json:"verification_code,omitempty"`
	CreatedAt        *time.Time     `json:"created_at"`
	ConsentExpiresAt *time.Time     `json:"consent_expires_at"`
	ApprovedAt       *time.Time     `json:"approved_at"`
	ExpiresAt        *time.Time     `json:"expires_at"`
	EndedAt          *time.Time     `json:"ended_at"`
	Extension        *ExtensionView `json:"extension,omitempty"`
}

// ExtensionView is a pending request for more time.
type ExtensionView struct {
	By          string     `json:"by"`
	RequestedAt *time.Time `json:"requested_at"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// shownScopes is what a session grants once approved, and what it asks
// for until then.
func shownScopes(s *session.Session) session.Scopes {
	if !s.ApprovedAt.IsZero() {
		return orEmpty(s.Scopes)
	}
	return orEmpty(s.Requested)
}

func orEmpty(s session.Scopes) session.Scopes {
	if s == nil {
		return session.Scopes{}
	}
	return s
}

func sessionView(s *session.Session) SessionView {
	v := SessionView{
		ID: s.ID, State: s.State, EndReason: string(s.EndReason), EndedBy: s.EndedBy,
		Agent: s.Agent, AgentName: s.AgentName, Team: s.Team, Customer: s.Customer, Reason: s.Reason,
		Scopes: shownScopes(s), RequestedScopes: orEmpty(s.Requested), Duration: s.Duration.String(),
		CreatedAt: timePtr(s.CreatedAt), ConsentExpiresAt: timePtr(s.ConsentExpiresAt),
		ApprovedAt: timePtr(s.ApprovedAt), ExpiresAt: timePtr(s.ExpiresAt), EndedAt: timePtr(s.EndedAt),
	}
	if s.State == session.Requested {
		v.VerificationCode = s.VerificationCode
	}
	if s.Extension != nil {
		v.Extension = &ExtensionView{By: s.Extension.By.String(), RequestedAt: timePtr(s.Extension.RequestedAt)}
	}
	return v
}

// canSee reports whether p may see s: agents their own, supervisors their
// own and their team's, auditors all.
func canSee(p *principal, s *session.Session) bool {
	switch p.role {
	case auditor:
		return true
	case supervisor:
		return s.Agent == p.user.Name || sameTeam(p.user.Team, s.Team)
	case agent:
		return s.Agent == p.user.Name
	}
	return false
}

// sameTeam reports whether a supervisor of team sup oversees a member of
// team member. No team is not a team: a supervisor without one oversees
// nobody, else they would reach every teamless agent (the bastion refuses
// the same case).
func sameTeam(sup, member string) bool {
	return sup != "" && sup == member
}

// canAct reports whether p may revoke or extend s.
func canAct(p *principal, s *session.Session) bool {
	return p.role != auditor && canSee(p, s)
}

func actorOf(p *principal, r *http.Request) session.Actor {
	return session.Actor{Name: p.user.Name, Role: string(p.role), Remote: clientAddr(r)}
}

type createRequest struct {
	Customer string         `json:"customer"`
	Scopes   session.Scopes `json:"scopes"`
	Duration string         `json:"duration"`
	Reason   string         `json:"reason,omitempty"`
}

// CreateResponse is the contract's answer to `session new --json`.
type CreateResponse struct {
	ID               string         `json:"id"`
	State            session.State  `json:"state"`
	ConsentURL       string         `json:"consent_url"`
	VerificationCode string         `json:"verification_code"`
	ConsentExpiresAt time.Time      `json:"consent_expires_at"`
	Scopes           session.Scopes `json:"scopes"`
	Duration         string         `json:"duration"`
}

func (g *Gateway) handleCreateSession(w http.ResponseWriter, r *http.Request, p *principal) {
	var req createRequest
	if err := decodeJSON(w, r, &req); err != nil {
		g.writeErr(w, r, err)
		return
	}
	d, err := parseDuration(req.Duration)
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	s, token, err := g.broker.Create(r.Context(), actorOf(p, r), session.NewRequest{
		Agent: p.user.Name, AgentName: p.user.DisplayName, Team: p.user.Team,
		Customer: req.Customer, Reason: req.Reason, Scopes: req.Scopes, Duration: d,
	})
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	if by, locked := g.locked.by(p.user.Name); locked {
		// Locked while this request was in flight, after the lock ended
		// the agent's sessions: end this one too, as the one who locked.
		if _, err := g.broker.LockAgent(r.Context(), p.user.Name, by); err != nil {
			g.log.Error("ending a session created during a lock", "session", s.ID, "err", err)
		}
		g.writeErr(w, r, errorf(http.StatusForbidden, "account locked by an administrator"))
		return
	}
	// The account is read again only if a user or token was written
	// through this gateway's store since this request's token was looked
	// up (a reset deletes the user's tokens before it stores the new
	// secret): a store read for every session created cost 5 % of the CPU
	// of creating one. Another process's writes are not seen here; the
	// auth cache's TTL bounds those.
	if err := g.signInSince(r.Context(), p); err != nil {
		// The sign-in was reset (or the account locked, by another
		// process) while this request was in flight, maybe after the
		// agent's sessions were ended (handleReenrollUser): this one ends
		// too, or it would outlive the reset.
		if _, rerr := g.broker.Revoke(r.Context(), s.ID, session.Actor{Name: "system", Role: "system", Remote: clientAddr(r)}); rerr != nil && !errors.Is(rerr, session.ErrEnded) {
			g.log.Error("ending a session created during a sign-in reset", "session", s.ID, "err", rerr)
		}
		switch {
		case errors.Is(err, errSignInReset):
			err = errorf(http.StatusUnauthorized, "sign-in reset by an administrator; enroll again")
		case errors.Is(err, errAccountLocked):
			err = errorf(http.StatusForbidden, "account locked by an administrator")
		}
		g.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, CreateResponse{
		ID: s.ID, State: s.State, ConsentURL: g.consentURL(token), VerificationCode: s.VerificationCode,
		ConsentExpiresAt: s.ConsentExpiresAt.UTC(), Scopes: s.Requested, Duration: s.Duration.String(),
	})
}

func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, errorf(http.StatusBadRequest, "duration is required, as 30m")
	}
	d, err := time.ParseDuration(s)
	if err != nil || len(s) > 32 {
		return 0, errorf(http.StatusBadRequest, "duration %q is not like 30m or 1h30m", truncate(s, 32))
	}
	return d, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func (g *Gateway) handleListSessions(w http.ResponseWriter, r *http.Request, p *principal) {
	q := r.URL.Query()
	f := session.Filter{State: session.State(q.Get("state")), Agent: q.Get("agent")}
	switch f.State {
	case "", session.Requested, session.Active, session.Ended:
	default:
		g.writeErr(w, r, errorf(http.StatusBadRequest, "state must be requested, active or ended"))
		return
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > session.MaxList {
			g.writeErr(w, r, errorf(http.StatusBadRequest, "limit must be 1 to %d", session.MaxList))
			return
		}
		f.Limit = n
	}
	switch p.role {
	case agent:
		f.Agent = p.user.Name
	case supervisor:
		// A teamless supervisor oversees nobody (sameTeam): an empty
		// Team would filter nothing, so list only their own sessions.
		f.Team = p.user.Team
		if f.Team == "" {
			f.Agent = p.user.Name
		}
	}
	ss, err := g.broker.List(r.Context(), f)
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	out := []SessionView{}
	for _, s := range ss {
		if canSee(p, s) {
			out = append(out, sessionView(s))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

// visibleSession loads the session of the path and hides it (404) from
// callers who may not see it.
func (g *Gateway) visibleSession(ctx context.Context, r *http.Request, p *principal) (*session.Session, error) {
	id := r.PathValue("id")
	if len(id) > 64 {
		return nil, session.ErrNotFound
	}
	s, err := g.broker.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if !canSee(p, s) {
		return nil, session.ErrNotFound
	}
	return s, nil
}

func (g *Gateway) handleGetSession(w http.ResponseWriter, r *http.Request, p *principal) {
	s, err := g.visibleSession(r.Context(), r, p)
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sessionView(s))
}

func (g *Gateway) handleRevokeSession(w http.ResponseWriter, r *http.Request, p *principal) {
	if err := decodeOptional(w, r, &struct{}{}); err != nil {
		g.writeErr(w, r, err)
		return
	}
	s, err := g.visibleSession(r.Context(), r, p)
	if err == nil && !canAct(p, s) {
		err = errorf(http.StatusForbidden, "you may not end this session")
	}
	if err == nil {
		s, err = g.broker.Revoke(r.Context(), s.ID, actorOf(p, r))
	}
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sessionView(s))
}

func (g *Gateway) handleExtendSession(w http.ResponseWriter, r *http.Request, p *principal) {
	var req struct {
		By string `json:"by"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		g.writeErr(w, r, err)
		return
	}
	d, err := parseDuration(req.By)
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	s, err := g.visibleSession(r.Context(), r, p)
	if err == nil && !canAct(p, s) {
		err = errorf(http.StatusForbidden, "you may not extend this session")
	}
	if err == nil {
		s, err = g.broker.RequestExtension(r.Context(), s.ID, actorOf(p, r), d)
	}
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sessionView(s))
}

// handleWatchSessions streams updates of every session the caller may see
// over a websocket, one SessionView per message. What the caller may see
// is fixed when the feed opens, so the feed ends with the caller's access
// (see openStaffConn) and the page reconnects as who they are then.
func (g *Gateway) handleWatchSessions(w http.ResponseWriter, r *http.Request, p *principal) {
	access, release, err := g.openStaffConn(r.Context(), p, true)
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	defer release()
	g.serveWatch(access, w, r, func(s *session.Session) bool { return canSee(p, s) }, nil, false,
		func(s *session.Session) (any, bool) { return sessionView(s), false })
}

// decodeOptional accepts an empty body or a JSON object.
func decodeOptional(w http.ResponseWriter, r *http.Request, v any) error {
	if r.ContentLength == 0 && r.Header.Get("Content-Type") == "" {
		return nil
	}
	err := decodeJSON(w, r, v)
	var ae *apiError
	if errors.As(err, &ae) && ae.msg == "request body is empty; send a JSON object" {
		return nil
	}
	return err
}
