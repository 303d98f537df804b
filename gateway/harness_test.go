package gateway_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"supportgate/gateway"
	"supportgate/gateway/identity"
	"supportgate/gateway/keys"
	"supportgate/gateway/sqlite"
	"supportgate/session"
	"supportgate/session/sessiontest"
)

var t0 = time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)

const testPassword = "correct horse battery staple"

// env is a gateway on a real SQLite store behind a real TLS listener, on
// a fake clock.
type env struct {
	t     *testing.T
	clock *sessiontest.Clock
	store *sqlite.Store
	mat   *keys.Material
	g     *gateway.Gateway
	srv   *httptest.Server
	users map[string]*testUser
}

type testUser struct {
	name   string
	role   identity.Role
	secret []byte
	token  string
	clock  *sessiontest.Clock
}

func newEnv(t *testing.T) *env { return newEnvWith(t, nil) }

// newEnvWith lets a test adjust the gateway's Config before New.
func newEnvWith(t *testing.T, adjust func(*gateway.Config)) *env {
	t.Helper()
	dir := t.TempDir()
	mat, _, err := keys.LoadOrCreate(filepath.Join(dir, "data"), keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(filepath.Join(dir, "test.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, clock: sessiontest.NewClock(t0), store: st, mat: mat, users: map[string]*testUser{}}
	srv := httptest.NewUnstartedServer(nil)
	srv.TLS = mat.TLSConfig()
	srv.StartTLS()
	e.srv = srv
	cfg := gateway.Config{
		Store: st, Keys: mat, PublicURL: srv.URL, Org: "ACME Support",
		Policy:         session.Policy{MaxOpenPerAgent: 1000},
		PasswordParams: identity.PasswordParams{Memory: 1024, Time: 1, Threads: 1},
		Clock:          e.clock,
	}
	if adjust != nil {
		adjust(&cfg)
		if cfg.Clock != session.Clock(e.clock) {
			e.clock = nil // the test chose another clock
		}
	}
	e.g, err = gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = e.g.Handler()
	if err := e.g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Close()
		e.g.Close()
		st.Close()
	})
	return e
}

// client returns an HTTPS client that trusts the gateway CA and keeps
// cookies (a browser profile of its own).
func (e *env) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.mat.CAPool()}}}
}

// addUser creates an enrolled user and logs them in.
func (e *env) addUser(name string, role identity.Role, team string) *testUser {
	e.t.Helper()
	a, err := e.g.Accounts().Create(context.Background(), gateway.NewUser{Name: name, Role: role, Team: team, Password: testPassword})
	if err != nil {
		e.t.Fatal(err)
	}
	u := &testUser{name: name, role: role, secret: a.User.TOTPSecret, clock: e.clock}
	e.login(u)
	e.users[name] = u
	return u
}

// login gets u a fresh bearer token.
func (e *env) login(u *testUser) {
	e.t.Helper()
	var resp struct {
		Token string `json:"token"`
	}
	e.do(nil, "POST", "/api/v1/login", map[string]string{"user": u.name, "password": testPassword, "totp": u.code()}, 200, &resp)
	u.token = resp.Token
	// A code is accepted once: later logins need the next time step.
	e.clock.Advance(30 * time.Second)
}

func (u *testUser) code() string { return identity.TOTPCode(u.secret, u.clock.Now()) }

// request sends a request and returns status and body.
type reqOpt func(*http.Request)

func withHeader(k, v string) reqOpt { return func(r *http.Request) { r.Header.Set(k, v) } }

func (e *env) send(c *http.Client, u *testUser, method, path string, body any, opts ...reqOpt) (int, []byte) {
	e.t.Helper()
	if c == nil {
		c = e.client()
	}
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if u != nil {
		req.Header.Set("Authorization", "Bearer "+u.token)
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

// do sends a request as u and fails the test unless the status is want;
// the JSON answer goes into out.
func (e *env) do(u *testUser, method, path string, body any, want int, out any, opts ...reqOpt) []byte {
	e.t.Helper()
	code, data := e.send(nil, u, method, path, body, opts...)
	if code != want {
		e.t.Fatalf("%s %s: got %d %s, want %d", method, path, code, data, want)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			e.t.Fatalf("%s %s: decoding %s: %v", method, path, data, err)
		}
	}
	return data
}

type created struct {
	ID         string `json:"id"`
	ConsentURL string `json:"consent_url"`
	Code       string `json:"verification_code"`
}

func (c created) token() string { return c.ConsentURL[strings.LastIndex(c.ConsentURL, "/")+1:] }

func (e *env) newSession(u *testUser, scopes []string, d string) created {
	e.t.Helper()
	var c created
	e.do(u, "POST", "/api/v1/sessions", map[string]any{"customer": "ACME Ltd", "scopes": scopes, "duration": d}, 201, &c)
	return c
}

// customer is one browser profile on the consent API.
type customer struct {
	e    *env
	c    *http.Client
	tok  string
	csrf string
}

func (e *env) customer(tok string) *customer { return &customer{e: e, c: e.client(), tok: tok} }

func (cu *customer) open() (int, map[string]any) {
	cu.e.t.Helper()
	code, data := cu.e.send(cu.c, nil, "GET", "/api/v1/consent/"+cu.tok, nil)
	var v map[string]any
	json.Unmarshal(data, &v)
	if s, ok := v["csrf_token"].(string); ok && s != "" {
		cu.csrf = s
	}
	return code, v
}

func (cu *customer) post(action string, body any) (int, map[string]any) {
	cu.e.t.Helper()
	code, data := cu.e.send(cu.c, nil, "POST", "/api/v1/consent/"+cu.tok+"/"+action, body, withHeader("X-CSRF-Token", cu.csrf))
	var v map[string]any
	json.Unmarshal(data, &v)
	return code, v
}

func (e *env) sessionState(u *testUser, id string) (state, reason string) {
	e.t.Helper()
	var v struct {
		State     string `json:"state"`
		EndReason string `json:"end_reason"`
	}
	e.do(u, "GET", "/api/v1/sessions/"+id, nil, 200, &v)
	return v.State, v.EndReason
}
