package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"time"

	"supportgate/gateway/audit"
	"supportgate/gateway/identity"
	"supportgate/session"
)

// The customer consent API. The token in the path finds the session; the
// first client to open it is bound to it by a cookie holding a client key;
// every POST must also carry the CSRF token from the GET in X-CSRF-Token.

// ConsentView is what the customer sees (DESIGN.md section 4).
type ConsentView struct {
	Agent            ConsentAgent   `json:"agent"`
	Customer         string         `json:"customer"`
	Scopes           session.Scopes `json:"scopes"`
	RequestedScopes  session.Scopes `json:"requested_scopes"`
	Duration         string         `json:"duration"`
	VerificationCode string         `json:"verification_code"`
	State            session.State  `json:"state"`
	EndReason        string         `json:"end_reason,omitempty"`
	// EndedBy says who ended an ended session, as a kind and never a
	// name: "customer", "staff" (the agent, a supervisor, an admin) or
	// "system" (the time box, the gateway).
	EndedBy          string         `json:"ended_by,omitempty"`
	Reason           string         `json:"reason,omitempty"`
	Recorded         bool           `json:"recorded"`
	ConsentExpiresAt *time.Time     `json:"consent_expires_at"`
	ApprovedAt       *time.Time     `json:"approved_at"`
	ExpiresAt        *time.Time     `json:"expires_at"`
	Extension        *ExtensionView `json:"extension,omitempty"`
	CSRFToken        string         `json:"csrf_token,omitempty"`
	// Connected is who uses the session right now (agent shells,
	// supervisors watching, forwards), while it is active.
	Connected []Participant `json:"connected,omitempty"`
	// Handoff answers POST .../handoff only.
	Handoff *HandoffView `json:"handoff,omitempty"`
}

// handoffHeader carries a handoff code on the helper's first GET (the
// helper's side is assist.HandoffHeader).
const handoffHeader = "X-Handoff-Code"

// HandoffView is a one-time code that lets the customer's
// supportgate-assist join a session approved in the browser, and the
// command that uses it. The link in the command pins the gateway's TLS
// certificate by its SHA-256, so the helper needs no CA file.
type HandoffView struct {
	Code      string    `json:"code"`
	ExpiresAt time.Time `json:"expires_at"`
	Link      string    `json:"link"`
	Command   string    `json:"command"`
}

// ConsentAgent names the agent as the gateway verified them.
type ConsentAgent struct {
	Name string `json:"name"`
	Org  string `json:"org"`
}

func (g *Gateway) consentView(s *session.Session, csrf string) ConsentView {
	v := ConsentView{
		Agent:    ConsentAgent{Name: s.AgentName, Org: g.org},
		Customer: s.Customer, Scopes: shownScopes(s), RequestedScopes: orEmpty(s.Requested),
		Duration: s.Duration.String(), VerificationCode: s.VerificationCode,
		State: s.State, EndReason: string(s.EndReason), Reason: s.Reason, Recorded: true,
		ConsentExpiresAt: timePtr(s.ConsentExpiresAt), ApprovedAt: timePtr(s.ApprovedAt),
		ExpiresAt: timePtr(s.ExpiresAt), CSRFToken: csrf,
	}
	if v.Agent.Name == "" {
		v.Agent.Name = s.Agent
	}
	if s.State == session.Ended {
		v.EndedBy = endedByKind(s.EndedBy)
	}
	if s.Extension != nil {
		v.Extension = &ExtensionView{By: s.Extension.By.String(), RequestedAt: timePtr(s.Extension.RequestedAt)}
	}
	if s.State == session.Active {
		v.Connected = g.presence.list(s.ID)
	}
	return v
}

// endedByKind is the kind of who ended a session, for the customer's page:
// the broker records the customer as "customer" and the gateway's own
// ends under the system's name or a component's ("recorder").
func endedByKind(by string) string {
	switch by {
	case "customer":
		return "customer"
	case session.System.Name, "recorder", "":
		return "system"
	}
	return "staff"
}

// clientCookie names the cookie that binds one consent link to a client.
// The name carries a prefix of the token's hash so that a browser can hold
// several links, and the __Host- prefix pins it to this origin.
func clientCookie(token string) string {
	h := session.HashToken(token)
	return "__Host-sgc_" + hex.EncodeToString(h[:6])
}

// csrfToken is derived from the client key: only the bound client, which
// read it from the GET, can send it back.
func (g *Gateway) csrfToken(clientKey string) string {
	if clientKey == "" {
		return ""
	}
	mac := hmac.New(sha256.New, g.csrfKey)
	mac.Write([]byte(clientKey))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// checkCSRF checks the request's CSRF token against clientKey's and
// returns that token.
func (g *Gateway) checkCSRF(r *http.Request, clientKey string) (string, error) {
	got := r.Header.Get("X-CSRF-Token")
	want := g.csrfToken(clientKey)
	if got == "" || want == "" || !hmac.Equal([]byte(got), []byte(want)) {
		return "", errorf(http.StatusForbidden, "missing or invalid CSRF token")
	}
	return want, nil
}

func customerActor(r *http.Request) session.Actor {
	return session.Actor{Name: "customer", Role: "customer", Remote: clientAddr(r)}
}

// consentRequest reads the token and client key of a customer request.
// Each link has its own rate limit, and each address a stricter one for
// links that do not exist, which is what guessing looks like.
func (g *Gateway) consentRequest(r *http.Request) (token, clientKey string, err error) {
	remote := clientAddr(r)
	if !g.limits.peek(probeLimit, "probe:"+limitAddr(remote)) {
		return "", "", errorf(http.StatusTooManyRequests, "too many requests for unknown links; wait a minute")
	}
	token = r.PathValue("token")
	th, err := session.ParseToken(token)
	if err != nil {
		g.limits.allow(probeLimit, "probe:"+limitAddr(remote))
		return "", "", session.ErrNotFound
	}
	if !g.limits.allow(consentLimit, "consent:"+hex.EncodeToString(th[:16])) {
		return "", "", errorf(http.StatusTooManyRequests, "too many requests; wait a moment")
	}
	if c, err := r.Cookie(clientCookie(token)); err == nil {
		clientKey = c.Value
	}
	return token, clientKey, nil
}

// consentErr charges a request for an unknown link to its address.
func (g *Gateway) consentErr(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, session.ErrNotFound) {
		g.limits.allow(probeLimit, "probe:"+limitAddr(clientAddr(r)))
	}
	g.writeErr(w, r, err)
}

func (g *Gateway) handleConsentGet(w http.ResponseWriter, r *http.Request, _ *principal) {
	token, key, err := g.consentRequest(r)
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	if err := g.refuseOwnAgent(r, token); err != nil {
		g.writeErr(w, r, err)
		return
	}
	var s *session.Session
	var newKey string
	if code := r.Header.Get(handoffHeader); code != "" && key == "" {
		// The customer's helper, with the code the bound browser gave it.
		s, newKey, err = g.broker.ClaimHandoff(r.Context(), token, code, customerActor(r))
	} else {
		s, newKey, err = g.broker.Open(r.Context(), token, key, customerActor(r))
	}
	if err != nil {
		g.consentErr(w, r, err)
		return
	}
	if newKey != "" {
		key = newKey
		http.SetCookie(w, &http.Cookie{
			Name: clientCookie(token), Value: newKey, Path: "/",
			Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
			MaxAge: int(session.HardMaxDuration/time.Second) + 3600,
		})
	}
	csrf := ""
	if s.Open() {
		csrf = g.csrfToken(key)
	}
	writeJSON(w, http.StatusOK, g.consentView(s, csrf))
}

// consentPost runs a customer action after the token, cookie and CSRF
// checks, answering with the session as the customer now sees it.
func (g *Gateway) consentPost(w http.ResponseWriter, r *http.Request, body any,
	act func(token, key string, by session.Actor) (*session.Session, error)) {
	g.consentPostView(w, r, body, act, nil)
}

// consentPostView is consentPost with a last say on the view answered.
func (g *Gateway) consentPostView(w http.ResponseWriter, r *http.Request, body any,
	act func(token, key string, by session.Actor) (*session.Session, error), view func(*ConsentView)) {
	token, key, err := g.consentRequest(r)
	if err == nil && key == "" {
		err = errorf(http.StatusForbidden, "this link was not opened in this browser; open it first (a link works only in the browser that opened it)")
	}
	var csrf string
	if err == nil {
		csrf, err = g.checkCSRF(r, key)
	}
	if err == nil {
		if body != nil {
			err = decodeJSON(w, r, body)
		} else {
			err = decodeOptional(w, r, &struct{}{})
		}
	}
	var s *session.Session
	if err == nil {
		s, err = act(token, key, customerActor(r))
	}
	if err != nil {
		g.consentErr(w, r, err)
		return
	}
	v := g.consentView(s, csrf)
	if view != nil {
		view(&v)
	}
	writeJSON(w, http.StatusOK, v)
}

// handleConsentHandoff gives the browser that approved a shell or tunnel
// session a one-time code for the customer's supportgate-assist.
func (g *Gateway) handleConsentHandoff(w http.ResponseWriter, r *http.Request, _ *principal) {
	var hv *HandoffView
	g.consentPostView(w, r, nil, func(token, key string, by session.Actor) (*session.Session, error) {
		code, s, err := g.broker.Handoff(r.Context(), token, key, by)
		if err != nil {
			return nil, err
		}
		pin := sha256.Sum256(g.keys.TLSCert.Certificate[0])
		link := g.consentURL(token) + "#sha256=" + hex.EncodeToString(pin[:]) + "&handoff=" + code
		hv = &HandoffView{Code: code, ExpiresAt: s.HandoffExpiresAt, Link: link, Command: "supportgate-assist '" + link + "'"}
		return s, nil
	}, func(v *ConsentView) { v.Handoff = hv })
}

func (g *Gateway) handleConsentApprove(w http.ResponseWriter, r *http.Request, _ *principal) {
	var req struct {
		Scopes session.Scopes `json:"scopes"`
	}
	g.consentPost(w, r, &req, func(token, key string, by session.Actor) (*session.Session, error) {
		if err := g.refuseOwnAgent(r, token); err != nil {
			return nil, err
		}
		return g.broker.Approve(r.Context(), token, key, req.Scopes, by)
	})
}

// refuseOwnAgent refuses a customer request from a browser signed in to
// the gateway as the session's own agent: opening the link there would
// bind it to the agent's browser, and approving there would be the agent
// consenting for the customer. (A browser not signed in, a private window
// say, is not recognised; the detector's self_approval rule looks at the
// address.) A request without the staff cookie costs nothing here.
func (g *Gateway) refuseOwnAgent(r *http.Request, token string) error {
	c, err := r.Cookie(sessionCookie)
	if err != nil || identity.ParseToken(identity.APITokenPrefix, c.Value) != nil {
		return nil
	}
	p, err := g.principalOf(r.Context(), c.Value)
	if err != nil {
		return nil // a stale login is nobody
	}
	s, err := g.broker.Peek(r.Context(), token)
	if err != nil || s.Agent != p.user.Name {
		return nil
	}
	g.record(r.Context(), audit.Event{Type: "consent.refused", Actor: p.user.Name, Role: p.user.Role, Session: s.ID,
		Remote: clientAddr(r), Detail: map[string]string{"why": "opened by the session's own agent"}})
	return errorf(http.StatusForbidden, "you are signed in as %s, the agent of this session: send the link to the customer; only they may open and approve it", p.user.Name)
}

func (g *Gateway) handleConsentDeny(w http.ResponseWriter, r *http.Request, _ *principal) {
	g.consentPost(w, r, nil, func(token, key string, by session.Actor) (*session.Session, error) {
		return g.broker.Deny(r.Context(), token, key, by)
	})
}

func (g *Gateway) handleConsentRevoke(w http.ResponseWriter, r *http.Request, _ *principal) {
	g.consentPost(w, r, nil, func(token, key string, by session.Actor) (*session.Session, error) {
		return g.broker.CustomerRevoke(r.Context(), token, key, by)
	})
}

func (g *Gateway) handleConsentExtension(w http.ResponseWriter, r *http.Request, _ *principal) {
	var req struct {
		Approve *bool `json:"approve"`
		// By and RequestedAt, optional, name the pending request the
		// customer was shown, as the view's "extension" gave them; the
		// broker refuses the answer (409) if another request is pending.
		By          string     `json:"by"`
		RequestedAt *time.Time `json:"requested_at"`
	}
	g.consentPost(w, r, &req, func(token, key string, by session.Actor) (*session.Session, error) {
		if req.Approve == nil {
			return nil, errorf(http.StatusBadRequest, `send {"approve": true} or {"approve": false}`)
		}
		a := session.ExtensionAnswer{Approve: *req.Approve}
		if req.By != "" {
			d, err := time.ParseDuration(req.By)
			if err != nil || d <= 0 || len(req.By) > 32 {
				return nil, errorf(http.StatusBadRequest, "by %q is not a duration like the view's 15m0s", truncate(req.By, 32))
			}
			a.By = d
		}
		if req.RequestedAt != nil {
			a.RequestedAt = *req.RequestedAt
		}
		return g.broker.DecideExtension(r.Context(), token, key, a, by)
	})
}

// handleConsentWatch streams the customer's view of the session over a
// websocket until it ends.
func (g *Gateway) handleConsentWatch(w http.ResponseWriter, r *http.Request, _ *principal) {
	token, key, err := g.consentRequest(r)
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	if key == "" {
		g.writeErr(w, r, errorf(http.StatusForbidden, "this link was not opened in this browser"))
		return
	}
	s, _, err := g.broker.Open(r.Context(), token, key, customerActor(r))
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	th := s.TokenHash
	csrf := g.csrfToken(key)
	g.serveWatch(r.Context(), w, r, func(x *session.Session) bool { return x.TokenHash == th },
		[]any{g.consentView(s, csrf)}, !s.Open(),
		func(x *session.Session) (any, bool) { return g.consentView(x, csrf), !x.Open() })
}
