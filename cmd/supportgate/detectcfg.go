package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"supportgate/gateway/detect"
)

// detectConfig is the "detect" block of serve's JSON config.
type detectConfig struct {
	Enabled   bool            `json:"enabled"`
	Location  string          `json:"location"`  // IANA zone of working hours; default UTC
	AutoLock  bool            `json:"auto_lock"` // lock an agent on a critical alert
	QueueSize int             `json:"queue_size"`
	Webhooks  []webhookConfig `json:"webhooks"`
	Syslog    []syslogConfig  `json:"syslog"`
}

type webhookConfig struct {
	URL         string `json:"url"`
	SecretFile  string `json:"secret_file"` // file holding the HMAC secret (at least 16 bytes)
	MaxAttempts int    `json:"max_attempts"`
}

type syslogConfig struct {
	Network    string `json:"network"` // tls, or udp or tcp to a loopback collector
	Addr       string `json:"addr"`
	CAFile     string `json:"ca_file"`     // tls: PEM roots to trust instead of the system's
	ServerName string `json:"server_name"` // tls: name in the collector's certificate; default addr's host
	Hostname   string `json:"hostname"`
	Facility   int    `json:"facility"`
}

// baselinesDir holds the detector's per-agent baselines in the data dir.
const baselinesDir = "detect-baselines"

// detector turns the config block into the detector's Config, or nil when
// detection is off. Baselines and alerts live in DATA/detect-baselines.
func (c detectConfig) detector(dataDir string, log *slog.Logger) (*detect.Config, error) {
	if !c.Enabled {
		return nil, nil
	}
	dir := detect.DirStore{Dir: filepath.Join(dataDir, baselinesDir)}
	dc := &detect.Config{Log: log, QueueSize: c.QueueSize, Baselines: dir, Alerts: dir}
	if c.Location != "" {
		loc, err := time.LoadLocation(c.Location)
		if err != nil {
			return nil, fmt.Errorf("config detect.location: %w", err)
		}
		dc.Location = loc
	}
	for _, w := range c.Webhooks {
		secret, err := os.ReadFile(w.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("config detect.webhooks: secret: %w", err)
		}
		hook, err := detect.NewWebhook(detect.WebhookConfig{URL: w.URL, Secret: []byte(strings.TrimSpace(string(secret))), MaxAttempts: w.MaxAttempts, Log: log})
		if err != nil {
			return nil, fmt.Errorf("config detect.webhooks: %w", err)
		}
		dc.Sinks = append(dc.Sinks, hook)
	}
	for _, s := range c.Syslog {
		var tc *tls.Config
		if s.CAFile != "" || s.ServerName != "" {
			if s.Network != "tls" {
				return nil, fmt.Errorf("config detect.syslog: ca_file and server_name are for network tls")
			}
			tc = &tls.Config{ServerName: s.ServerName}
			if s.CAFile != "" {
				pem, err := os.ReadFile(s.CAFile)
				if err != nil {
					return nil, fmt.Errorf("config detect.syslog: ca_file: %w", err)
				}
				tc.RootCAs = x509.NewCertPool()
				if !tc.RootCAs.AppendCertsFromPEM(pem) {
					return nil, fmt.Errorf("config detect.syslog: ca_file %s: no PEM certificate in it", s.CAFile)
				}
			}
		}
		sl, err := detect.NewSyslog(detect.SyslogConfig{Network: s.Network, Addr: s.Addr, TLS: tc, Hostname: s.Hostname, Facility: s.Facility, Log: log})
		if err != nil {
			return nil, fmt.Errorf("config detect.syslog: %w", err)
		}
		dc.Sinks = append(dc.Sinks, sl)
	}
	return dc, nil
}
