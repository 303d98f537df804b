package gateway_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"supportgate/gateway/audit"
	"supportgate/gateway/identity"
)

// reenrollAnswer is what POST /api/v1/users/{name}/reenroll answers.
type reenrollAnswer struct {
	User struct {
		Enrolled bool `json:"enrolled"`
		Locked   bool `json:"locked"`
	} `json:"user"`
	EnrollURL     string `json:"enroll_url"`
	SessionsEnded int    `json:"sessions_ended"`
}

// enrollWith follows an enrollment link as its owner: reads the TOTP
// secret it offers, then sets password with the current code. It returns
// the secret.
func (e *env) enrollWith(url, password string) []byte {
	e.t.Helper()
	tok := url[strings.LastIndex(url, "/")+1:]
	var info struct {
		URI string `json:"otpauth_uri"`
	}
	e.do(nil, "GET", "/api/v1/enroll/"+tok, nil, 200, &info)
	secret, err := identity.ParseTOTPURI(info.URI)
	if err != nil {
		e.t.Fatal(err)
	}
	e.do(nil, "POST", "/api/v1/enroll/"+tok, map[string]string{
		"password": password, "totp": identity.TOTPCode(secret, e.clock.Now()),
	}, 200, nil)
	e.clock.Advance(30 * time.Second) // the code is spent
	return secret
}

// TestReenrollUser: an admin resets the sign-in of an agent who lost
// their phone. Nothing the old phone, password or tokens hold opens the
// account again, the agent's open session ends revoked, and the new link
// enrolls a new secret.
func TestReenrollUser(t *testing.T) {
	e := newEnv(t)
	root := e.addUser("root", identity.RoleAdmin, "")
	aud := e.addUser("audrey", identity.RoleAuditor, "")
	alice := e.addUser("alice", identity.RoleAgent, "red")
	s := e.approved(alice)
	oldSecret := alice.secret

	var got reenrollAnswer
	e.do(root, "POST", "/api/v1/users/alice/reenroll", "{}", 200, &got)
	if got.User.Enrolled || got.SessionsEnded != 1 || !strings.HasPrefix(got.EnrollURL, e.srv.URL+"/enroll/") {
		t.Fatalf("reenroll answered %+v", got)
	}
	if state, reason := e.sessionState(aud, s.ID); state != "ended" || reason != "revoked" {
		t.Errorf("alice's session is %s/%s after the reset, want ended/revoked", state, reason)
	}
	// The old bearer token is dead, and so are the old password and phone.
	if code, body := e.send(nil, alice, "GET", "/api/v1/me", nil); code != http.StatusUnauthorized {
		t.Errorf("old token after reset: %d %s, want 401", code, body)
	}
	if code, body := e.send(nil, nil, "POST", "/api/v1/login", map[string]string{
		"user": "alice", "password": testPassword, "totp": identity.TOTPCode(oldSecret, e.clock.Now()),
	}); code != http.StatusUnauthorized {
		t.Errorf("old password and phone after reset: %d %s, want 401", code, body)
	}
	e.clock.Advance(30 * time.Second)

	const newPassword = "a brand new horse battery"
	secret := e.enrollWith(got.EnrollURL, newPassword)
	if bytes.Equal(secret, oldSecret) {
		t.Fatal("the reset kept the TOTP secret of the lost phone")
	}
	if code, body := e.send(nil, nil, "POST", "/api/v1/login", map[string]string{
		"user": "alice", "password": newPassword, "totp": identity.TOTPCode(oldSecret, e.clock.Now()),
	}); code != http.StatusUnauthorized {
		t.Errorf("the old phone's code with the new password: %d %s, want 401", code, body)
	}
	e.clock.Advance(30 * time.Second)
	e.do(nil, "POST", "/api/v1/login", map[string]string{
		"user": "alice", "password": newPassword, "totp": identity.TOTPCode(secret, e.clock.Now()),
	}, 200, nil)

	// The link is one-time.
	tok := got.EnrollURL[strings.LastIndex(got.EnrollURL, "/")+1:]
	if code, _ := e.send(nil, nil, "GET", "/api/v1/enroll/"+tok, nil); code != http.StatusNotFound {
		t.Errorf("used link: %d, want 404", code)
	}

	// The audit log says who reset whom.
	var found bool
	err := e.store.ScanAudit(context.Background(), 1, func(r audit.Record) error {
		if r.Type == "user.reenroll" {
			found = r.Actor == "root" && r.Detail["user"] == "alice" && r.Detail["sessions_ended"] == "1"
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Error("no user.reenroll audit record naming root, alice and the ended session")
	}
}

// TestReenrollRefusals: not one's own account, not an unknown one, and a
// lock survives a reset.
func TestReenrollRefusals(t *testing.T) {
	e := newEnv(t)
	root := e.addUser("root", identity.RoleAdmin, "")
	e.addUser("bob", identity.RoleAgent, "red")

	if code, body := e.send(nil, root, "POST", "/api/v1/users/root/reenroll", "{}"); code != http.StatusBadRequest {
		t.Errorf("own reset: %d %s, want 400", code, body)
	}
	if code, body := e.send(nil, root, "POST", "/api/v1/users/nobody/reenroll", "{}"); code != http.StatusNotFound {
		t.Errorf("unknown user: %d %s, want 404", code, body)
	}
	if code, body := e.send(nil, root, "POST", "/api/v1/users/bob/reenroll", `{"password":"x"}`); code != http.StatusBadRequest {
		t.Errorf("a body with fields: %d %s, want 400 (admins never set passwords)", code, body)
	}

	// A locked account's reset keeps the lock: the owner can enroll, but
	// not sign in until an admin unlocks it.
	e.do(root, "POST", "/api/v1/users/bob/lock", "{}", 200, nil)
	var got reenrollAnswer
	e.do(root, "POST", "/api/v1/users/bob/reenroll", "{}", 200, &got)
	if !got.User.Locked {
		t.Error("the reset unlocked bob")
	}
	const pw = "bobs new horse battery staple"
	secret := e.enrollWith(got.EnrollURL, pw)
	login := func() int {
		code, _ := e.send(nil, nil, "POST", "/api/v1/login", map[string]string{
			"user": "bob", "password": pw, "totp": identity.TOTPCode(secret, e.clock.Now()),
		})
		e.clock.Advance(30 * time.Second)
		return code
	}
	if code := login(); code != http.StatusUnauthorized {
		t.Errorf("locked, enrolled again: login %d, want 401", code)
	}
	e.do(root, "POST", "/api/v1/users/bob/unlock", "{}", 200, nil)
	if code := login(); code != http.StatusOK {
		t.Errorf("unlocked: login %d, want 200", code)
	}
}

// TestReenrollPendingLink: a user whose link was lost or destroyed by a
// lock gets a new one, and the old one stops working.
func TestReenrollPendingLink(t *testing.T) {
	e := newEnv(t)
	root := e.addUser("root", identity.RoleAdmin, "")
	var added struct {
		EnrollURL string `json:"enroll_url"`
	}
	e.do(root, "POST", "/api/v1/users", map[string]string{"name": "carol", "role": "agent"}, 201, &added)
	var got reenrollAnswer
	e.do(root, "POST", "/api/v1/users/carol/reenroll", "{}", 200, &got)
	if got.EnrollURL == added.EnrollURL {
		t.Fatal("the reset answered the old link")
	}
	old := added.EnrollURL[strings.LastIndex(added.EnrollURL, "/")+1:]
	if code, _ := e.send(nil, nil, "GET", "/api/v1/enroll/"+old, nil); code != http.StatusNotFound {
		t.Errorf("the first link after the reset: %d, want 404", code)
	}
	e.enrollWith(got.EnrollURL, "carols horse battery staple")
}

// TestEnrollPasswordPolicyMessage checks that the enrollment page is told
// why a password is refused in words meant for its owner: before, the
// answer was "identity: password is shorter than 12 characters".
func TestEnrollPasswordPolicyMessage(t *testing.T) {
	e := newEnv(t)
	root := e.addUser("root", identity.RoleAdmin, "")
	var added struct {
		EnrollURL string `json:"enroll_url"`
	}
	e.do(root, "POST", "/api/v1/users", map[string]string{"name": "carol", "role": "agent"}, 201, &added)
	tok := added.EnrollURL[strings.LastIndex(added.EnrollURL, "/")+1:]
	body := e.do(nil, "POST", "/api/v1/enroll/"+tok, map[string]string{"password": "short", "totp": "123456"}, http.StatusBadRequest, nil)
	if want := `{"error":"password is shorter than 12 characters"}`; strings.TrimSpace(string(body)) != want {
		t.Errorf("short password: %s, want %s", body, want)
	}
}
