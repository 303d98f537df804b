package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"supportgate/gateway/audit"
	"supportgate/gateway/identity"
	"supportgate/gateway/users"
)

// sessionCookie names the browser login cookie. It carries an API token:
// HttpOnly so page scripts never see it, SameSite=Strict so other sites
// cannot send it, and __Host- so only this origin, over HTTPS, sets it.
const sessionCookie = "__Host-sg_session"

// authenticateRoute authenticates the caller of a role route: by bearer
// token when the request has an Authorization header, otherwise by the
// browser session cookie. A cookie-authenticated request that may change
// state (any method but GET and HEAD) must also carry the session's CSRF
// token in X-CSRF-Token; bearer requests need none, as no browser attaches
// a bearer token on its own.
func (g *Gateway) authenticateRoute(r *http.Request) (*principal, error) {
	if r.Header.Get("Authorization") != "" {
		return g.authenticate(r)
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return g.authenticate(r) // neither: the bearer error says what to do
	}
	if identity.ParseToken(identity.APITokenPrefix, c.Value) != nil {
		return nil, errorf(http.StatusUnauthorized, "signed out; sign in again")
	}
	p, err := g.principalOf(r.Context(), c.Value)
	if err != nil {
		return nil, err
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		got, want := r.Header.Get("X-CSRF-Token"), g.sessionCSRF(p.token)
		if got == "" || !hmac.Equal([]byte(got), []byte(want)) {
			return nil, errorf(http.StatusForbidden, "missing or invalid CSRF token")
		}
	}
	return p, nil
}

// sessionCSRF is the CSRF token of a browser session, derived from its
// token's hash: pages read it from the login answer or GET /api/v1/me.
func (g *Gateway) sessionCSRF(t users.Token) string {
	mac := hmac.New(sha256.New, g.csrfKey)
	mac.Write([]byte("session\x00"))
	mac.Write(t.Hash[:])
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// sameOrigin reports whether a browser request comes from this gateway's
// own pages. Requests without an Origin header are not from a page.
func (g *Gateway) sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	return origin != "" && (origin == g.public.Scheme+"://"+g.public.Host || origin == "https://"+r.Host)
}

// authenticate resolves the bearer token of a request to its user.
func (g *Gateway) authenticate(r *http.Request) (*principal, error) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || identity.ParseToken(identity.APITokenPrefix, tok) != nil {
		return nil, errorf(http.StatusUnauthorized, "missing or malformed bearer token; run supportgate login")
	}
	return g.principalOf(r.Context(), tok)
}

// principalOf resolves an API token to its user.
func (g *Gateway) principalOf(ctx context.Context, tok string) (*principal, error) {
	h, now := identity.HashToken(tok), g.clock.Now()
	if p, ok := g.authCache.get(h, now); ok {
		return p, nil
	}
	gen := g.authCache.generation()
	t, err := g.store.GetToken(ctx, h)
	if errors.Is(err, users.ErrNotFound) || (err == nil && t.Kind != users.KindAPI) {
		return nil, errorf(http.StatusUnauthorized, "unknown or revoked token; run supportgate login")
	}
	if err != nil {
		return nil, err
	}
	if !g.clock.Now().Before(t.ExpiresAt) {
		return nil, errorf(http.StatusUnauthorized, "token expired; run supportgate login")
	}
	u, err := g.store.GetUser(ctx, t.User)
	if errors.Is(err, users.ErrNotFound) {
		return nil, errorf(http.StatusUnauthorized, "unknown or revoked token; run supportgate login")
	}
	if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, errorf(http.StatusForbidden, "account is locked by an administrator")
	}
	role, err := identity.ParseRole(u.Role)
	if err != nil {
		return nil, errorf(http.StatusForbidden, "account has no valid role")
	}
	p := &principal{user: u, role: role, token: t, gen: gen}
	g.authCache.put(gen, p, now)
	return p, nil
}

type loginRequest struct {
	User         string `json:"user"`
	Password     string `json:"password"`
	TOTP         string `json:"totp"`
	SSHPublicKey string `json:"ssh_public_key,omitempty"` // authorized_keys form; a certificate is issued for it
	// Browser asks for a browser session: the token goes into the
	// HttpOnly session cookie instead of the answer, which carries the
	// session's CSRF token. Only the gateway's own pages may ask.
	Browser bool `json:"browser,omitempty"`
}

type loginResponse struct {
	Token          string    `json:"token,omitempty"` // empty for a browser login
	CSRFToken      string    `json:"csrf_token,omitempty"`
	ExpiresAt      time.Time `json:"expires_at"`
	User           string    `json:"user"`
	DisplayName    string    `json:"display_name"`
	Role           string    `json:"role"`
	Team           string    `json:"team,omitempty"`
	SSHCertificate string    `json:"ssh_certificate,omitempty"`
	SSHHostKey     string    `json:"ssh_host_key"`
	SSHUserCA      string    `json:"ssh_user_ca"`
	SSHPort        int       `json:"ssh_port,omitempty"` // the bastion's port, if served
}

// dummyHash is checked against when the user does not exist, so that a
// login for an unknown name costs the same as one with a wrong password.
// It is made on first use, not at start-up: every CLI command links this
// package.
var dummyHash = sync.OnceValue(func() string {
	h, err := identity.HashPassword(rand.Reader, "not a real password, never matches", identity.DefaultPasswordParams)
	if err != nil {
		return "$argon2id$v=19$m=65536,t=2,p=2$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	}
	return h
})

// msgLoginFailed is every failed login's answer, whatever failed, so it
// tells nobody which part was wrong. It says that a code works once: an
// agent who logs in again within the same 30 s otherwise takes the refused
// code for a mistyped password.
const msgLoginFailed = "wrong user name, password or code (each code works once: a second login waits for the next code)"

// handleLogin checks password and TOTP together, so a response never says
// which of the two was wrong. Five failures lock the account for the
// lockout period; a TOTP code is accepted once.
func (g *Gateway) handleLogin(w http.ResponseWriter, r *http.Request, _ *principal) {
	remote := clientAddr(r)
	if !g.limits.allow(loginLimit, "login:"+limitAddr(remote)) {
		g.metrics.logins.WithLabelValues("rate_limited").Inc()
		g.writeErr(w, r, errorf(http.StatusTooManyRequests, "too many login attempts; wait a minute"))
		return
	}
	var req loginRequest
	if err := decodeJSON(w, r, &req); err != nil {
		g.writeErr(w, r, err)
		return
	}
	if req.Browser && !g.sameOrigin(r) {
		g.writeErr(w, r, errorf(http.StatusForbidden, "browser sign-in is only accepted from this gateway's own pages"))
		return
	}
	ctx := r.Context()
	fail := func(u *users.User, why string) {
		g.metrics.logins.WithLabelValues("failure").Inc()
		ev := audit.Event{Type: "login.failure", Actor: "unknown", Remote: remote, Detail: map[string]string{"why": why}}
		if u != nil {
			ev.Actor, ev.Role = u.Name, u.Role
		}
		g.record(ctx, ev)
		g.writeErr(w, r, errorf(http.StatusUnauthorized, msgLoginFailed))
	}
	if CheckUserName(req.User) != nil || len(req.Password) > 1024 || len(req.TOTP) > 16 {
		g.hasher.Check(ctx, dummyHash(), req.Password)
		fail(nil, "malformed request")
		return
	}
	u, err := g.store.GetUser(ctx, req.User)
	if err != nil && !errors.Is(err, users.ErrNotFound) {
		g.writeErr(w, r, err)
		return
	}
	now := g.clock.Now()
	refuseLocked := func(u *users.User, why string, until time.Time) {
		g.metrics.logins.WithLabelValues("locked").Inc()
		ev := audit.Event{Type: "login.refused", Actor: "unknown", Remote: remote, Detail: map[string]string{"why": why}}
		if u != nil {
			ev.Actor, ev.Role = u.Name, u.Role
		}
		g.record(ctx, ev)
		g.writeErr(w, r, errorf(http.StatusTooManyRequests, "account locked after repeated failures until %s", until.UTC().Format(time.RFC3339)))
	}
	if err != nil || !u.Enrolled || u.Disabled {
		// Nobody can sign in as this name. The answers are those an
		// account gives a wrong password, lockout included (ghosts.go),
		// and cost the same password check: neither the status, the
		// message, the time taken nor /metrics may tell which user names
		// exist, or that an administrator locked one. The audit log does.
		var who *users.User
		why := "unknown or unenrolled user"
		if err == nil && u.Enrolled {
			who, why = u, "locked by admin"
		}
		if locked, until := g.ghosts.locked(g.lockout, req.User, now); locked {
			refuseLocked(who, why+"; too many failures", until)
			return
		}
		g.hasher.Check(ctx, dummyHash(), req.Password)
		if locked, until := g.ghosts.fail(g.lockout, req.User, now); locked {
			// Where an account's lock records user.lockout: one event
			// here too, so that /metrics' count of audit events moves
			// alike. Not user.lockout, which the detector takes for an
			// account of that name: login.lockout, by "unknown" for a
			// name with no account.
			ev := audit.Event{Type: "login.lockout", Actor: "unknown", Remote: remote,
				Detail: map[string]string{"user": req.User, "until": until.UTC().Format(time.RFC3339)}}
			if who != nil {
				ev.Actor, ev.Role = who.Name, who.Role
			}
			g.record(ctx, ev)
		}
		if who == nil {
			fail(nil, why)
			return
		}
		g.metrics.logins.WithLabelValues("failure").Inc()
		g.record(ctx, audit.Event{Type: "login.refused", Actor: who.Name, Role: who.Role, Remote: remote, Detail: map[string]string{"why": why}})
		g.writeErr(w, r, errorf(http.StatusUnauthorized, msgLoginFailed))
		return
	}
	state := loginState(u)
	if locked, until := g.lockout.Locked(state, now); locked {
		refuseLocked(u, "too many failures", until)
		return
	}
	pwOK, _, err := g.hasher.Check(ctx, u.PasswordHash, req.Password)
	if err != nil {
		g.writeErr(w, r, fmt.Errorf("checking password of %s: %w", u.Name, err))
		return
	}
	counter, totpOK := identity.VerifyTOTP(u.TOTPSecret, req.TOTP, g.totpNow(), u.TOTPLast)
	if !pwOK || !totpOK {
		why := "wrong password"
		if pwOK {
			why = "wrong or reused TOTP code"
			g.record(ctx, audit.Event{Type: "login.mfa_failure", Actor: u.Name, Role: u.Role, Remote: remote})
		}
		g.countFailure(ctx, u, now, remote)
		fail(u, why)
		return
	}
	setLoginState(u, g.lockout.Success(state, now))
	u.TOTPLast = counter
	u.Version++
	if err := g.store.UpdateUser(ctx, u); err != nil {
		if errors.Is(err, users.ErrConflict) {
			// A concurrent login changed the account, possibly with this
			// very code or with failures that just locked it: refuse rather
			// than accept a code twice or lift a lock.
			fail(u, "concurrent login")
			return
		}
		g.writeErr(w, r, err)
		return
	}

	resp, err := g.issueLogin(ctx, u, req.SSHPublicKey)
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	// An admin may have reset the sign-in (Accounts.Reset) or locked the
	// account since the password and code were checked, and deleted the
	// user's tokens before this one was stored: look again, now that it
	// is. A token left behind would outlive the reset, or the lock once
	// lifted.
	if err := g.sameSignIn(ctx, u); err != nil {
		if derr := g.store.DeleteToken(ctx, identity.HashToken(resp.Token)); derr != nil && !errors.Is(derr, users.ErrNotFound) {
			g.writeErr(w, r, fmt.Errorf("revoking a login of %s whose account changed: %w", u.Name, derr))
			return
		}
		if !errors.Is(err, errSignInReset) && !errors.Is(err, errAccountLocked) {
			g.writeErr(w, r, err)
			return
		}
		fail(u, err.Error()+" during login")
		return
	}
	g.metrics.logins.WithLabelValues("success").Inc()
	detail := map[string]string{}
	if resp.SSHCertificate != "" {
		detail["ssh_certificate"] = "issued"
	}
	if req.Browser {
		detail["session"] = "browser"
		http.SetCookie(w, &http.Cookie{
			Name: sessionCookie, Value: resp.Token, Path: "/",
			Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
			MaxAge: int(resp.ExpiresAt.Sub(g.clock.Now()) / time.Second),
		})
		resp.CSRFToken = g.sessionCSRF(users.Token{Hash: identity.HashToken(resp.Token)})
		resp.Token = ""
	}
	g.record(ctx, audit.Event{Type: "login.success", Actor: u.Name, Role: u.Role, Remote: remote, Detail: detail})
	writeJSON(w, http.StatusOK, resp)
}

// loginFailureTries bounds how often a failed login re-reads its account
// after a concurrent update won the version race. Each lost race is another
// update stored, and failures stop writing once the account is locked, so
// only a flood of other updates exhausts it.
const loginFailureTries = 10

// countFailure stores a failed login of u at now. When a concurrent login
// changed the account first it re-reads the account and counts again:
// dropping the failure would let parallel guesses count as one and never
// reach the lock. A failure that finds the account locked stores nothing,
// as Lockout.Fail would not extend the lock anyway.
func (g *Gateway) countFailure(ctx context.Context, u *users.User, now time.Time, remote string) {
	name := u.Name
	for range loginFailureTries {
		state := loginState(u)
		if locked, _ := g.lockout.Locked(state, now); locked {
			return
		}
		next := g.lockout.Fail(state, now)
		setLoginState(u, next)
		u.Version++
		err := g.store.UpdateUser(ctx, u)
		if err == nil {
			if locked, _ := g.lockout.Locked(next, now); locked {
				g.record(ctx, audit.Event{Type: "user.lockout", Actor: "system", Role: "system", Remote: remote,
					Detail: map[string]string{"user": name, "until": next.LockedUntil.UTC().Format(time.RFC3339)}})
			}
			return
		}
		if !errors.Is(err, users.ErrConflict) {
			g.log.Error("storing login failure", "user", name, "err", err)
			return
		}
		if u, err = g.store.GetUser(ctx, name); err != nil {
			g.log.Error("re-reading account to store login failure", "user", name, "err", err)
			return
		}
	}
	g.log.Error("storing login failure: account kept changing concurrently", "user", name, "tries", loginFailureTries)
}

// sameSignIn reports errSignInReset if u's sign-in was reset (a new TOTP
// secret, the password cleared or replaced) since u was read from the
// store, and errAccountLocked if the account is locked now.
func (g *Gateway) sameSignIn(ctx context.Context, u *users.User) error {
	cur, err := g.store.GetUser(ctx, u.Name)
	if errors.Is(err, users.ErrNotFound) {
		return errSignInReset
	}
	if err != nil {
		return err
	}
	if !cur.Enrolled || cur.PasswordHash != u.PasswordHash || !hmac.Equal(cur.TOTPSecret, u.TOTPSecret) {
		return errSignInReset
	}
	if cur.Disabled {
		return errAccountLocked
	}
	return nil
}

// signInSince is sameSignIn for the user of p, skipped while nothing was
// written to users or tokens through this gateway since p was resolved
// (see principal.gen).
func (g *Gateway) signInSince(ctx context.Context, p *principal) error {
	if g.authCache.generation() == p.gen {
		return nil
	}
	return g.sameSignIn(ctx, p.user)
}

// loginState is the lockout bookkeeping stored in u.
func loginState(u *users.User) identity.LoginState {
	return identity.LoginState{Failures: u.Failures, LastFailure: u.LastFailure, LockedUntil: u.LockedUntil}
}

// setLoginState stores s in u; the caller writes u back.
func setLoginState(u *users.User, s identity.LoginState) {
	u.Failures, u.LastFailure, u.LockedUntil = s.Failures, s.LastFailure, s.LockedUntil
}

// totpNow is the time TOTP codes are checked at: the wall clock, which
// the user's authenticator follows too, even when the gateway's clock is a
// session.SteadyClock. That one stays ahead of a wall clock set back, or
// of one corrected after running fast, and checking codes against it would
// refuse every code until the wall clock caught up. Nothing stored is
// stretched by a wall clock set back here: the ±1 step window moves with
// it, and a code at or before the last one used is refused anyway.
func (g *Gateway) totpNow() time.Time {
	if w, ok := g.clock.(interface{ Wall() time.Time }); ok {
		return w.Wall()
	}
	return g.clock.Now()
}

// issueLogin creates the bearer token and, if asked, the SSH certificate.
func (g *Gateway) issueLogin(ctx context.Context, u *users.User, sshKey string) (*loginResponse, error) {
	now := g.clock.Now().UTC()
	tok, h, err := identity.NewToken(g.rand, identity.APITokenPrefix)
	if err != nil {
		return nil, err
	}
	exp := now.Add(g.tokenTTL)
	resp := &loginResponse{
		Token: tok, ExpiresAt: exp, User: u.Name, DisplayName: u.DisplayName, Role: u.Role, Team: u.Team,
		SSHHostKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(g.keys.SSHHostKey.PublicKey()))),
		SSHUserCA:  strings.TrimSpace(string(ssh.MarshalAuthorizedKey(g.keys.SSHUserCA.PublicKey()))),
		SSHPort:    g.sshPort,
	}
	if sshKey != "" {
		cert, err := g.signUserCert(u, sshKey, h, now, exp)
		if err != nil {
			return nil, err
		}
		resp.SSHCertificate = cert
	}
	if err := g.store.CreateToken(ctx, users.Token{Hash: h, User: u.Name, Kind: users.KindAPI, CreatedAt: now, ExpiresAt: exp}); err != nil {
		return nil, err
	}
	return resp, nil
}

// signUserCert issues a user certificate for key, valid for the login's
// lifetime (at most MaxTokenTTL), with the user name as its principal,
// bound to the login whose token has hash h (users.SSHLoginExtension): the
// bastion refuses it once that token is gone, so logout ends it.
func (g *Gateway) signUserCert(u *users.User, key string, h [32]byte, now, exp time.Time) (string, error) {
	if len(key) > 8<<10 {
		return "", errorf(http.StatusBadRequest, "ssh_public_key too long")
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(key))
	if err != nil {
		return "", errorf(http.StatusBadRequest, "ssh_public_key is not an authorized_keys line")
	}
	if _, isCert := pub.(*ssh.Certificate); isCert {
		return "", errorf(http.StatusBadRequest, "ssh_public_key must be a plain key, not a certificate")
	}
	var serial [8]byte
	if _, err := g.rand.Read(serial[:]); err != nil {
		return "", err
	}
	cert := &ssh.Certificate{
		Key:             pub,
		Serial:          binary.BigEndian.Uint64(serial[:]),
		CertType:        ssh.UserCert,
		KeyId:           "supportgate:" + u.Name,
		ValidPrincipals: []string{u.Name},
		ValidAfter:      uint64(now.Add(-time.Minute).Unix()),
		ValidBefore:     uint64(exp.Unix()),
		Permissions: ssh.Permissions{Extensions: map[string]string{
			"permit-pty": "", "permit-port-forwarding": "",
			users.SSHLoginExtension: users.LoginID(h),
		}},
	}
	if err := cert.SignCert(g.rand, g.keys.SSHUserCA); err != nil {
		return "", fmt.Errorf("signing ssh certificate: %w", err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(cert))), nil
}

func (g *Gateway) handleLogout(w http.ResponseWriter, r *http.Request, p *principal) {
	if err := g.store.DeleteToken(r.Context(), p.token.Hash); err != nil && !errors.Is(err, users.ErrNotFound) {
		g.writeErr(w, r, err)
		return
	}
	// Websockets and SSH connections this login opened end with it; other
	// logins of the same user keep theirs.
	g.loginEnded(p.token.Hash, errLoggedOut)
	if _, err := r.Cookie(sessionCookie); err == nil {
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/",
			Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	}
	g.record(r.Context(), audit.Event{Type: "logout", Actor: p.user.Name, Role: p.user.Role, Remote: clientAddr(r)})
	writeJSON(w, http.StatusOK, map[string]string{"status": "logged out"})
}

// handleMe describes the caller; a browser session also gets its CSRF
// token back, so that a reloaded page can act again.
func (g *Gateway) handleMe(w http.ResponseWriter, r *http.Request, p *principal) {
	v := struct {
		UserView
		CSRFToken string `json:"csrf_token,omitempty"`
	}{UserView: userView(p.user)}
	if r.Header.Get("Authorization") == "" {
		v.CSRFToken = g.sessionCSRF(p.token)
	}
	writeJSON(w, http.StatusOK, v)
}

// Enrollment: the one-time link from first run or an admin shows the TOTP
// secret to its holder, then sets the password once a code proves the
// authenticator has it.

func (g *Gateway) enrollUser(r *http.Request) (*users.User, users.Token, error) {
	tok := r.PathValue("token")
	if identity.ParseToken(identity.EnrollTokenPrefix, tok) != nil {
		return nil, users.Token{}, errorf(http.StatusNotFound, "unknown or used enrollment link")
	}
	t, err := g.store.GetToken(r.Context(), identity.HashToken(tok))
	if errors.Is(err, users.ErrNotFound) || (err == nil && (t.Kind != users.KindEnroll || !g.clock.Now().Before(t.ExpiresAt))) {
		return nil, users.Token{}, errorf(http.StatusNotFound, "unknown, used or expired enrollment link")
	}
	if err != nil {
		return nil, users.Token{}, err
	}
	u, err := g.store.GetUser(r.Context(), t.User)
	if err != nil {
		return nil, users.Token{}, err
	}
	return u, t, nil
}

func (g *Gateway) handleEnrollInfo(w http.ResponseWriter, r *http.Request, _ *principal) {
	if !g.limits.allow(enrollLimit, "enroll:"+limitAddr(clientAddr(r))) {
		g.writeErr(w, r, errorf(http.StatusTooManyRequests, "too many attempts; wait a minute"))
		return
	}
	u, _, err := g.enrollUser(r)
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{
		"user": u.Name, "display_name": u.DisplayName, "role": u.Role, "org": g.org,
		"otpauth_uri": identity.TOTPURI(g.org, u.Name, u.TOTPSecret),
	})
}

func (g *Gateway) handleEnroll(w http.ResponseWriter, r *http.Request, _ *principal) {
	remote := clientAddr(r)
	if !g.limits.allow(enrollLimit, "enroll:"+limitAddr(remote)) {
		g.writeErr(w, r, errorf(http.StatusTooManyRequests, "too many attempts; wait a minute"))
		return
	}
	var req struct {
		Password string `json:"password"`
		TOTP     string `json:"totp"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		g.writeErr(w, r, err)
		return
	}
	ctx := r.Context()
	u, t, err := g.enrollUser(r)
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	if err := identity.CheckPasswordPolicy(req.Password); err != nil {
		g.writeErr(w, r, errorf(http.StatusBadRequest, "%v", err))
		return
	}
	counter, ok := identity.VerifyTOTP(u.TOTPSecret, req.TOTP, g.totpNow(), u.TOTPLast)
	if !ok {
		g.record(ctx, audit.Event{Type: "enroll.mfa_failure", Actor: u.Name, Role: u.Role, Remote: remote})
		g.writeErr(w, r, errorf(http.StatusBadRequest, "the code does not match; check the authenticator's clock and try the next code"))
		return
	}
	hash, err := g.hasher.Hash(ctx, req.Password)
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	// Claim the link first: of two concurrent uses only one deletes it.
	if err := g.store.DeleteToken(ctx, t.Hash); err != nil {
		g.writeErr(w, r, errorf(http.StatusNotFound, "unknown, used or expired enrollment link"))
		return
	}
	u.PasswordHash, u.Enrolled, u.TOTPLast = hash, true, counter
	u.Failures, u.LockedUntil = 0, time.Time{}
	u.Version++
	if err := g.store.UpdateUser(ctx, u); err != nil {
		g.writeErr(w, r, err)
		return
	}
	g.record(ctx, audit.Event{Type: "user.enrolled", Actor: u.Name, Role: u.Role, Remote: remote})
	writeJSON(w, http.StatusOK, map[string]string{"status": "enrolled", "user": u.Name})
}
