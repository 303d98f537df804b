package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRecordingConfigFile: the recording settings of serve's config file
// reach the gateway's configuration, and bad ones are refused with the
// setting named.
func TestRecordingConfigFile(t *testing.T) {
	load := func(t *testing.T, js string) (*fileConfig, error) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "config.json")
		if err := os.WriteFile(path, []byte(js), 0o600); err != nil {
			t.Fatal(err)
		}
		return loadConfig(path)
	}
	c, err := load(t, `{"record_input": true, "recording_max_bytes": 1073741824, "redact_patterns": ["ticket-[0-9]+", "(?i)password: \\S+"]}`)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := c.recording()
	if err != nil {
		t.Fatal(err)
	}
	if !rc.RecordInput || rc.MaxBytes != 1<<30 || len(rc.Redact.Patterns) != 2 || !rc.Redact.Patterns[1].MatchString("Password: hunter2") {
		t.Fatalf("recording config: %+v", rc)
	}
	for _, c := range []struct{ js, want string }{
		{`{"redact_patterns": ["ticket-["]}`, "redact_patterns[0]"},
		{`{"redact_patterns": ["x*"]}`, "matches the empty string"},
		{`{"redact_patterns": [""]}`, "empty"},
		{`{"redact_patterns": [` + strings.Repeat(`"a",`, maxRedactPatterns) + `"a"]}`, "at most"},
		{`{"recording_max_bytes": 1000}`, "recording_max_bytes"},
		{`{"recording_max_bytes": -1}`, "recording_max_bytes"},
	} {
		fc, err := load(t, c.js)
		if err != nil {
			t.Fatalf("%s: %v", c.js, err)
		}
		if _, err := fc.recording(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%.60s: got %v, want an error naming %q", c.js, err, c.want)
		}
	}
}

// TestConfigRefusesQuietDefaults: settings serve used to replace with its
// defaults without a word are refused with the setting named: a second
// JSON object (its recipients were ignored), an unknown log level, a token
// lifetime outside 1m to 8h.
func TestConfigRefusesQuietDefaults(t *testing.T) {
	for _, c := range []struct{ js, want string }{
		{`{"org": "A"} {"recipients": ["age1x"]}`, "more than one JSON value"},
		{`{"org": "A"} x`, "more than one JSON value"},
		{`{"log_level": "verbose"}`, "log_level"},
		{`{"token_ttl": "24h"}`, "token_ttl"},
		{`{"token_ttl": "-1h"}`, "token_ttl"},
		{`{"token_ttl": "10s"}`, "token_ttl"},
	} {
		path := filepath.Join(t.TempDir(), "config.json")
		if err := os.WriteFile(path, []byte(c.js), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := loadConfig(path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error naming %q", c.js, err, c.want)
		}
	}
	path := filepath.Join(t.TempDir(), "config.json")
	os.WriteFile(path, []byte(`{"log_level": "debug", "token_ttl": "2h"}`+"\n\n"), 0o600)
	if _, err := loadConfig(path); err != nil {
		t.Errorf("a good config: %v", err)
	}
}
