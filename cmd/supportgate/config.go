package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"regexp"
	"time"

	"supportgate/gateway"
	"supportgate/gateway/proxies"
	"supportgate/session"
)

// fileConfig is the JSON file of `serve --config FILE`. Flags given on the
// command line win over the file.
type fileConfig struct {
	Org        string   `json:"org"`
	PublicURL  string   `json:"public_url"`
	HTTPAddr   string   `json:"http_addr"`
	SSHAddr    string   `json:"ssh_addr"`
	WGAddr     string   `json:"wg_addr"`
	Recipients []string `json:"recipients"`
	TokenTTL   duration `json:"token_ttl"`
	LogLevel   string   `json:"log_level"`
	// RecordInput records what agents type in shells too (off by default:
	// keystrokes include passwords typed at prompts).
	RecordInput bool `json:"record_input"`
	// RedactPatterns are regular expressions (Go syntax) masked in
	// recordings besides card numbers: matched line by line in terminal
	// output and on whole chat messages.
	RedactPatterns []string `json:"redact_patterns"`
	// RecordingMaxBytes caps each recording (default 4 GiB). A session
	// whose recording reaches it is ended, not left unrecorded.
	RecordingMaxBytes int64        `json:"recording_max_bytes"`
	Policy            policyConfig `json:"policy"`
	Detect            detectConfig `json:"detect"`
	RTC               rtcConfig    `json:"rtc"`
	// TrustedProxies are the reverse proxies in front of serve, as
	// addresses or networks ("127.0.0.1", "10.0.0.0/8"), whose
	// X-Forwarded-For names the client (see gateway/proxies). Empty, the
	// default, trusts nobody: the client is the TCP peer.
	TrustedProxies []string `json:"trusted_proxies"`
	// ProxyProtocol are the TCP load balancers, as addresses or networks,
	// that pass TLS through to serve's HTTPS port after a PROXY protocol
	// header (v1 or v2): their connections must begin with one, or are
	// closed, and are taken to come from the client it names. Empty, the
	// default, reads no header from anyone.
	ProxyProtocol []string `json:"proxy_protocol"`
	// SSHProxyProtocol is proxy_protocol for the SSH bastion's port: the
	// TCP load balancers in front of it that send a PROXY protocol header.
	// It is a setting of its own because a balancer may pass one port with
	// a header and the other without.
	SSHProxyProtocol []string `json:"ssh_proxy_protocol"`

	trusted []netip.Prefix   // TrustedProxies, parsed by check
	lbs     *proxies.Trusted // ProxyProtocol, parsed by check; nil if empty
	sshLBs  *proxies.Trusted // SSHProxyProtocol, parsed by check; nil if empty
}

// httpListener is serve's HTTPS listener: ln, reading PROXY protocol
// headers from the load balancers of proxy_protocol.
func (c *fileConfig) httpListener(ln net.Listener) net.Listener {
	if c.lbs == nil {
		return ln
	}
	return proxies.ProtocolListener(ln, c.lbs, 0)
}

// sshListener is the SSH bastion's listener: ln, reading PROXY protocol
// headers from the load balancers of ssh_proxy_protocol.
func (c *fileConfig) sshListener(ln net.Listener) net.Listener {
	if c.sshLBs == nil {
		return ln
	}
	return proxies.ProtocolListener(ln, c.sshLBs, 0)
}

// parsePrefixes reads the addresses and networks of the setting name.
func parsePrefixes(name string, entries []string) ([]netip.Prefix, error) {
	if len(entries) > proxies.MaxPrefixes {
		return nil, fmt.Errorf("%s: %d entries, at most %d", name, len(entries), proxies.MaxPrefixes)
	}
	var out []netip.Prefix
	for i, s := range entries {
		p, err := proxies.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%s[%d] %q: %w", name, i, s, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// maxRedactPatterns bounds redact_patterns, each compiled and run over
// every line a session prints.
const (
	maxRedactPatterns   = 64
	maxRedactPatternLen = 1024
)

// recording returns the gateway's recording configuration.
func (c *fileConfig) recording() (gateway.RecordingConfig, error) {
	rc := gateway.RecordingConfig{RecordInput: c.RecordInput, MaxBytes: c.RecordingMaxBytes}
	if c.RecordingMaxBytes < 0 || (c.RecordingMaxBytes > 0 && c.RecordingMaxBytes < minRecordingBytes) {
		return rc, fmt.Errorf("config recording_max_bytes: %d is below the minimum of %d", c.RecordingMaxBytes, minRecordingBytes)
	}
	if len(c.RedactPatterns) > maxRedactPatterns {
		return rc, fmt.Errorf("config redact_patterns: %d patterns, at most %d", len(c.RedactPatterns), maxRedactPatterns)
	}
	for i, p := range c.RedactPatterns {
		if p == "" || len(p) > maxRedactPatternLen {
			return rc, fmt.Errorf("config redact_patterns[%d]: empty or longer than %d bytes", i, maxRedactPatternLen)
		}
		re, err := regexp.Compile(p)
		if err != nil {
			return rc, fmt.Errorf("config redact_patterns[%d]: %w", i, err)
		}
		if re.MatchString("") {
			return rc, fmt.Errorf("config redact_patterns[%d]: %q matches the empty string", i, p)
		}
		rc.Redact.Patterns = append(rc.Redact.Patterns, re)
	}
	return rc, nil
}

// minRecordingBytes is the smallest recording_max_bytes: room for the
// header, a few checkpoints and the end record.
const minRecordingBytes = 1 << 20

type policyConfig struct {
	MaxDuration     duration `json:"max_duration"`
	MinDuration     duration `json:"min_duration"`
	ConsentTTL      duration `json:"consent_ttl"`
	IdleTimeout     duration `json:"idle_timeout"`
	MaxOpenPerAgent int      `json:"max_open_per_agent"`
	AllowedScopes   string   `json:"allowed_scopes"`
	SupervisorFor   []string `json:"supervisor_for"`
}

// duration reads "30m" style strings.
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("durations are strings like \"30m\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = duration(v)
	return nil
}

const maxConfigBytes = 1 << 20

func loadConfig(path string) (*fileConfig, error) {
	c := &fileConfig{}
	if path == "" {
		return c, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if len(b) > maxConfigBytes {
		return nil, fmt.Errorf("config %s: larger than %d bytes", path, maxConfigBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	// A second object after the first (two configs pasted together) would
	// otherwise be ignored, its recipients with it: serve would then keep
	// a compliance identity on the host.
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("config %s: more than one JSON value; write one object", path)
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// check refuses settings serve would otherwise quietly replace with its
// defaults.
func (c *fileConfig) check() error {
	if c.LogLevel != "" {
		var l slog.Level
		if l.UnmarshalText([]byte(c.LogLevel)) != nil {
			return fmt.Errorf("log_level %q: want debug, info, warn or error", c.LogLevel)
		}
	}
	if ttl := time.Duration(c.TokenTTL); c.TokenTTL != 0 && (ttl < time.Minute || ttl > gateway.MaxTokenTTL) {
		return fmt.Errorf("token_ttl %v: want 1m to %v", ttl, gateway.MaxTokenTTL)
	}
	var err error
	if c.trusted, err = parsePrefixes("trusted_proxies", c.TrustedProxies); err != nil {
		return err
	}
	if c.lbs, err = balancers("proxy_protocol", c.ProxyProtocol); err != nil {
		return err
	}
	c.sshLBs, err = balancers("ssh_proxy_protocol", c.SSHProxyProtocol)
	return err
}

// balancers reads the load balancers of the setting name; nil if none.
func balancers(name string, entries []string) (*proxies.Trusted, error) {
	lbs, err := parsePrefixes(name, entries)
	if err != nil || len(lbs) == 0 {
		return nil, err
	}
	t, err := proxies.New(lbs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return t, nil
}

func (p policyConfig) policy() (session.Policy, error) {
	pol := session.Policy{
		MaxDuration: time.Duration(p.MaxDuration), MinDuration: time.Duration(p.MinDuration),
		ConsentTTL: time.Duration(p.ConsentTTL), IdleTimeout: time.Duration(p.IdleTimeout),
		MaxOpenPerAgent: p.MaxOpenPerAgent,
	}
	if p.AllowedScopes != "" {
		sc, err := session.ParseScopes(p.AllowedScopes)
		if err != nil {
			return pol, fmt.Errorf("config policy.allowed_scopes: %w", err)
		}
		pol.Allowed = sc
	}
	for _, k := range p.SupervisorFor {
		pol.SupervisorFor = append(pol.SupervisorFor, session.Kind(k))
	}
	return pol.WithDefaults()
}
