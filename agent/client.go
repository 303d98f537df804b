// Package agent is the support agent's client of the gateway API: login
// (with an SSH certificate for the bastion), sessions and their state. It
// keeps its state in a home directory (see Home) and never prints or logs
// tokens.
package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// MaxResponseBytes bounds what the client reads of one API answer.
const MaxResponseBytes = 16 << 20

// Client calls the gateway's JSON API.
type Client struct {
	Base  *url.URL // https://host:port
	HTTP  *http.Client
	Token string // bearer token; empty before login
}

// NewClient returns a client for the gateway at base that trusts only the
// CA certificates in caPEM (the gateway's DATA/ca.pem).
func NewClient(base string, caPEM []byte) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("gateway URL %q must be https://HOST[:PORT]", base)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("CA file holds no PEM certificate")
	}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 16,
		ForceAttemptHTTP2:   true,
	}
	return &Client{Base: u, HTTP: &http.Client{Transport: tr, Timeout: 60 * time.Second}}, nil
}

// APIError is an error answer of the gateway.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status)
}

// Do sends a JSON request and decodes the JSON answer into out (if not nil).
// An answer over MaxResponseBytes is an error, never cut short.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	data, err := c.call(ctx, c.HTTP, method, path, in, MaxResponseBytes)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = append((*raw)[:0], data...)
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decoding gateway answer: %w", err)
	}
	return nil
}

// call sends a JSON request with hc and returns the answer's body, which
// must be at most limit bytes.
func (c *Client) call(ctx context.Context, hc *http.Client, method, path string, in any, limit int64) ([]byte, error) {
	resp, err := c.send(ctx, hc, method, path, in)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading gateway answer: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("gateway answer is over %d bytes", limit)
	}
	return data, nil
}

// send sends a request, with in (if not nil) as its JSON body and the
// bearer token if there is one. An answer of status 300 or above comes back
// as an *APIError; any other, as the response, whose body the caller
// closes.
func (c *Client) send(ctx context.Context, hc *http.Client, method, path string, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base.String()+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("contacting gateway: %w", err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = http.StatusText(resp.StatusCode)
		}
		return nil, &APIError{Status: resp.StatusCode, Message: e.Error}
	}
	return resp, nil
}

// maxErrorBytes bounds what the client reads of an error answer.
const maxErrorBytes = 64 << 10

// LoginRequest is what Login sends.
type LoginRequest struct {
	User         string `json:"user"`
	Password     string `json:"password"`
	TOTP         string `json:"totp"`
	SSHPublicKey string `json:"ssh_public_key,omitempty"`
}

// LoginResponse is the gateway's answer to a login.
type LoginResponse struct {
	Token          string    `json:"token"`
	ExpiresAt      time.Time `json:"expires_at"`
	User           string    `json:"user"`
	DisplayName    string    `json:"display_name"`
	Role           string    `json:"role"`
	Team           string    `json:"team"`
	SSHCertificate string    `json:"ssh_certificate"`
	SSHHostKey     string    `json:"ssh_host_key"`
	SSHUserCA      string    `json:"ssh_user_ca"`
	SSHPort        int       `json:"ssh_port"`
}

// Login authenticates and sets c.Token.
func (c *Client) Login(ctx context.Context, req LoginRequest) (*LoginResponse, error) {
	var resp LoginResponse
	if err := c.Do(ctx, "POST", "/api/v1/login", req, &resp); err != nil {
		return nil, err
	}
	c.Token = resp.Token
	return &resp, nil
}

// NewSession asks a customer for a session.
type NewSession struct {
	Customer string   `json:"customer"`
	Scopes   []string `json:"scopes"`
	Duration string   `json:"duration"`
	Reason   string   `json:"reason,omitempty"`
}

// CreateSession sends the request and returns the raw JSON answer
// ({"id","state","consent_url","verification_code","consent_expires_at"}).
func (c *Client) CreateSession(ctx context.Context, ns NewSession) (json.RawMessage, error) {
	var raw json.RawMessage
	err := c.Do(ctx, "POST", "/api/v1/sessions", ns, &raw)
	return raw, err
}

// Session fetches one session as raw JSON.
func (c *Client) Session(ctx context.Context, id string) (json.RawMessage, error) {
	var raw json.RawMessage
	err := c.Do(ctx, "GET", "/api/v1/sessions/"+url.PathEscape(id), nil, &raw)
	return raw, err
}

// Sessions lists sessions visible to the user as raw JSON
// ({"sessions": [...]}); state may be empty.
func (c *Client) Sessions(ctx context.Context, state string) (json.RawMessage, error) {
	var raw json.RawMessage
	path := "/api/v1/sessions"
	if state != "" {
		path += "?state=" + url.QueryEscape(state)
	}
	err := c.Do(ctx, "GET", path, nil, &raw)
	return raw, err
}

// Revoke ends a session.
func (c *Client) Revoke(ctx context.Context, id string) (json.RawMessage, error) {
	var raw json.RawMessage
	err := c.Do(ctx, "POST", "/api/v1/sessions/"+url.PathEscape(id)+"/revoke", nil, &raw)
	return raw, err
}

// Extend asks the customer for more time.
func (c *Client) Extend(ctx context.Context, id string, by time.Duration) (json.RawMessage, error) {
	var raw json.RawMessage
	err := c.Do(ctx, "POST", "/api/v1/sessions/"+url.PathEscape(id)+"/extend", map[string]string{"by": by.String()}, &raw)
	return raw, err
}
