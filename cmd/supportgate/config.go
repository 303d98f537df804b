package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"time"

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
	RecordInput bool         `json:"record_input"`
	Policy      policyConfig `json:"policy"`
	Detect      detectConfig `json:"detect"`
	RTC         rtcConfig    `json:"rtc"`
}

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
	return c, nil
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
