// Package assist is the customer side of device access: it reads and
// answers a consent link like the customer's browser would, enrolls with
// the gateway, and runs a WireGuard peer on a userspace netstack that
// carries an SSH endpoint (PTY shells and commands as the customer's own
// user) and the consented TCP forwards, reachable only by the gateway,
// only while the session lasts. It does not listen on the customer's
// network: the tunnel socket is handed in and every service lives on the
// tunnel address.
package assist

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// View is the customer's view of a session, as the consent API returns it.
type View struct {
	Agent struct {
		Name string `json:"name"`
		Org  string `json:"org"`
	} `json:"agent"`
	Customer         string     `json:"customer"`
	Scopes           []string   `json:"scopes"`
	RequestedScopes  []string   `json:"requested_scopes"`
	Duration         string     `json:"duration"`
	VerificationCode string     `json:"verification_code"`
	State            string     `json:"state"`
	EndReason        string     `json:"end_reason"`
	Reason           string     `json:"reason"`
	Recorded         bool       `json:"recorded"`
	ApprovedAt       *time.Time `json:"approved_at"`
	ExpiresAt        *time.Time `json:"expires_at"`
	CSRFToken        string     `json:"csrf_token"`
	// Connected is who uses the session through the gateway right now.
	Connected []Participant `json:"connected"`
	// Extension is the agent's pending request for more time, if any.
	Extension *Extension `json:"extension"`
}

// Extension is an agent's request to extend an active session: By more,
// asked at RequestedAt. Answering names it, so that a yes cannot grant
// another request made in the meantime.
type Extension struct {
	By          string     `json:"by"`
	RequestedAt *time.Time `json:"requested_at"`
}

// Participant is someone connected to the session: the agent in a shell
// ("shell") or a forward ("forward"), a supervisor watching ("watch").
type Participant struct {
	Name    string `json:"name"`
	Role    string `json:"role"`
	Channel string `json:"channel"`
}

// String says it in words: "sam (supervisor, watching read-only)".
func (p Participant) String() string {
	what := map[string]string{"shell": "in a shell", "watch": "watching read-only", "forward": "using a forwarded port"}[p.Channel]
	if what == "" {
		what = p.Channel
	}
	return p.Name + " (" + p.Role + ", " + what + ")"
}

// Enrollment is the gateway's answer to enrolling.
type Enrollment struct {
	Session        string    `json:"session"`
	GatewayKey     string    `json:"gateway_public_key"`
	Endpoint       string    `json:"endpoint"`
	Address        string    `json:"address"`
	GatewayAddress string    `json:"gateway_address"`
	SSHPort        uint16    `json:"ssh_port"`
	GatewaySSHKey  string    `json:"gateway_ssh_key"`
	Scopes         []string  `json:"scopes"`
	ExpiresAt      time.Time `json:"expires_at"`
	Keepalive      int       `json:"persistent_keepalive"`
}

// APIError is an error answer of the gateway.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return fmt.Sprintf("gateway: %s (HTTP %d)", e.Message, e.Status) }

// Transient reports whether the answer says to try again later rather
// than that the request is refused: a server error (a reverse proxy's 502
// while the gateway restarts, a 503), a timeout or a rate limit.
func (e *APIError) Transient() bool {
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests || e.Status == http.StatusRequestTimeout
}

// Consent is one consent link opened by this client, which the gateway
// has bound to it (its cookie jar holds the client key).
type Consent struct {
	base  string // https://host[:port][/prefix]
	token string
	hc    *http.Client

	mu      sync.Mutex // guards view, csrf, handoff, skew
	view    View
	csrf    string
	handoff string        // a handoff code from the link, sent until the gateway has bound this client
	skew    time.Duration // the gateway's clock minus ours, from its last answer's Date header
}

// Skew is how far the gateway's clock is ahead of this machine's, as the
// Date header of its last answer says (to the second; zero if it sent
// none). The time box is on the gateway's clock: it ends here at
// ExpiresAt minus Skew.
func (c *Consent) Skew() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.skew
}

// HandoffHeader carries a handoff code: the customer approved in the
// browser, which then gave this helper a one-time code that binds it as
// the link's second client.
const HandoffHeader = "X-Handoff-Code"

// LinkParams reads the fragment of a consent link, which the browser never
// sends to the gateway: sha256 (the hex SHA-256 of the gateway's
// certificate, to pin) and handoff (a one-time code from the page).
func LinkParams(link string) (sha256Hex, handoff string) {
	u, err := url.Parse(strings.TrimSpace(link))
	if err != nil {
		return "", ""
	}
	q, _ := url.ParseQuery(u.Fragment)
	return q.Get("sha256"), q.Get("handoff")
}

// ParseLink splits a consent link https://HOST/c/TOKEN into the gateway's
// base URL and the token.
func ParseLink(link string) (base, token string, err error) {
	u, err := url.Parse(strings.TrimSpace(link))
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return "", "", errors.New("assist: the link must look like https://HOST/c/TOKEN")
	}
	i := strings.LastIndex(u.Path, "/c/")
	if i < 0 || strings.Contains(u.Path[i+3:], "/") || u.Path[i+3:] == "" {
		return "", "", errors.New("assist: the link must look like https://HOST/c/TOKEN")
	}
	return u.Scheme + "://" + u.Host + u.Path[:i], u.Path[i+3:], nil
}

// Open reads the consent link, binding it to this client. hc's transport
// decides which certificates are trusted; its cookie jar is replaced by
// one of Open's own.
func Open(ctx context.Context, hc *http.Client, link string) (*Consent, error) {
	base, token, err := ParseLink(link)
	if err != nil {
		return nil, err
	}
	jar, _ := cookiejar.New(nil)
	c := *hc
	c.Jar = jar
	_, handoff := LinkParams(link)
	cs := &Consent{base: base, token: token, hc: &c, handoff: handoff}
	if err := cs.Refresh(ctx); err != nil {
		return nil, err
	}
	cs.mu.Lock()
	cs.handoff = "" // spent: the cookie binds this client now
	cs.mu.Unlock()
	return cs, nil
}

// View is the session as last seen.
func (c *Consent) View() View {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.view
}

// Refresh reads the session again.
func (c *Consent) Refresh(ctx context.Context) error {
	var v View
	if err := c.call(ctx, "GET", "/api/v1/consent/"+c.token, nil, &v); err != nil {
		return err
	}
	c.setView(v)
	return nil
}

func (c *Consent) setView(v View) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.view = v
	if v.CSRFToken != "" {
		c.csrf = v.CSRFToken
	}
}

// Approve approves the session with scopes (nil keeps what the agent asked).
func (c *Consent) Approve(ctx context.Context, scopes []string) error {
	if scopes == nil {
		scopes = c.View().RequestedScopes
	}
	var v View
	if err := c.call(ctx, "POST", "/api/v1/consent/"+c.token+"/approve", map[string]any{"scopes": scopes}, &v); err != nil {
		return err
	}
	c.setView(v)
	return nil
}

// Deny refuses the session.
func (c *Consent) Deny(ctx context.Context) error {
	var v View
	if err := c.call(ctx, "POST", "/api/v1/consent/"+c.token+"/deny", nil, &v); err != nil {
		return err
	}
	c.setView(v)
	return nil
}

// AnswerExtension answers the pending extension request e, yes or no.
func (c *Consent) AnswerExtension(ctx context.Context, e Extension, approve bool) error {
	var v View
	body := map[string]any{"approve": approve, "by": e.By, "requested_at": e.RequestedAt}
	if err := c.call(ctx, "POST", "/api/v1/consent/"+c.token+"/extension", body, &v); err != nil {
		return err
	}
	c.setView(v)
	return nil
}

// Revoke ends the session.
func (c *Consent) Revoke(ctx context.Context) error {
	var v View
	if err := c.call(ctx, "POST", "/api/v1/consent/"+c.token+"/revoke", nil, &v); err != nil {
		return err
	}
	c.setView(v)
	return nil
}

// Enroll registers the helper's WireGuard public key (base64) and SSH host
// key (authorized_keys format) with an approved session.
func (c *Consent) Enroll(ctx context.Context, wgPublic, sshHostKey string) (*Enrollment, error) {
	var en Enrollment
	err := c.call(ctx, "POST", "/api/v1/assist/enroll", map[string]string{
		"consent_token": c.token, "wireguard_public_key": wgPublic, "ssh_host_key": sshHostKey,
	}, &en)
	if err != nil {
		return nil, err
	}
	return &en, nil
}

// Watch streams the session's views until it ends or ctx is done, calling
// f with each. It returns the last view, which says why the session ended.
func (c *Consent) Watch(ctx context.Context, f func(View)) (View, error) {
	u, _ := url.Parse(c.base + "/api/v1/consent/" + c.token + "/watch")
	u.Scheme = "wss"
	d := websocket.Dialer{Jar: c.hc.Jar, HandshakeTimeout: 10 * time.Second}
	if t, ok := c.hc.Transport.(*http.Transport); ok && t != nil {
		d.TLSClientConfig = t.TLSClientConfig
	}
	ws, resp, err := d.DialContext(ctx, u.String(), nil)
	if err != nil {
		if resp != nil {
			return c.View(), apiError(resp)
		}
		return c.View(), fmt.Errorf("assist: watching the session: %w", err)
	}
	defer ws.Close()
	stop := context.AfterFunc(ctx, func() { ws.Close() })
	defer stop()
	for {
		var v View
		if err := ws.ReadJSON(&v); err != nil {
			last := c.View()
			if ctx.Err() != nil {
				return last, ctx.Err()
			}
			if last.State == "ended" {
				return last, nil
			}
			return last, fmt.Errorf("assist: lost the gateway: %w", err)
		}
		c.setView(v)
		if f != nil {
			f(v)
		}
		if v.State == "ended" {
			return v, nil
		}
	}
}

func (c *Consent) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c.mu.Lock()
	if method != "GET" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	} else if c.handoff != "" {
		req.Header.Set(HandoffHeader, c.handoff)
	}
	c.mu.Unlock()
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("assist: %w", err)
	}
	defer resp.Body.Close()
	if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		c.mu.Lock()
		c.skew = d.Sub(time.Now().Truncate(time.Second))
		c.mu.Unlock()
	}
	if resp.StatusCode != http.StatusOK {
		return apiError(resp)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
		return fmt.Errorf("assist: reading the gateway's answer: %w", err)
	}
	return nil
}

func apiError(resp *http.Response) error {
	var e struct {
		Error string `json:"error"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &e) != nil || e.Error == "" {
		e.Error = http.StatusText(resp.StatusCode)
	}
	return &APIError{Status: resp.StatusCode, Message: e.Error}
}
