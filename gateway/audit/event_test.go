package audit_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"supportgate/gateway/audit"
)

func TestEventValidate(t *testing.T) {
	many := map[string]string{}
	for i := range audit.MaxDetailKeys + 1 {
		many[fmt.Sprintf("k%d", i)] = "v"
	}
	for _, tc := range []struct {
		name string
		e    audit.Event
		bad  string // "" if valid, else a substring of the error
	}{
		{"minimal", audit.Event{Type: "login.success"}, ""},
		{"full", event(1), ""},
		{"harmless keys", audit.Event{Type: "session.ended", Detail: map[string]string{
			"reason": "revoked", "exit_status": "0", "scopes": "view", "key": "ab12", "mfa": "totp", "fingerprint": "SHA256:x",
		}}, ""},
		{"limits exactly", audit.Event{
			Type:   strings.Repeat("a", audit.MaxTypeBytes),
			Actor:  strings.Repeat("b", audit.MaxFieldBytes),
			Detail: map[string]string{strings.Repeat("k", audit.MaxDetailKeyBytes): strings.Repeat("v", audit.MaxDetailValBytes)},
		}, ""},
		{"empty type", audit.Event{}, "type is empty"},
		{"long type", audit.Event{Type: strings.Repeat("a", audit.MaxTypeBytes+1)}, "type is 65 bytes"},
		{"type charset", audit.Event{Type: "Login Success"}, "only a-z"},
		{"long actor", audit.Event{Type: "x", Actor: strings.Repeat("b", audit.MaxFieldBytes+1)}, "actor is 1025 bytes"},
		{"bad utf8", audit.Event{Type: "x", Remote: "\xff"}, "remote is not valid UTF-8"},
		{"too many keys", audit.Event{Type: "x", Detail: many}, "33 keys"},
		{"long value", audit.Event{Type: "x", Detail: map[string]string{"k": strings.Repeat("v", audit.MaxDetailValBytes+1)}}, "1025 bytes"},
		{"long key", audit.Event{Type: "x", Detail: map[string]string{strings.Repeat("k", audit.MaxDetailKeyBytes+1): ""}}, "detail key is 65 bytes"},
		{"empty key", audit.Event{Type: "x", Detail: map[string]string{"": "v"}}, "empty detail key"},
		{"year out of range", audit.Event{Type: "x", Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.e.Validate()
			if tc.bad == "" {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.bad) || !errors.Is(err, audit.ErrInvalidEvent) {
				t.Fatalf("got %v, want ErrInvalidEvent containing %q", err, tc.bad)
			}
		})
	}
}

func TestEventValidateSecrets(t *testing.T) {
	for _, key := range []string{
		"password", "Password", "PASSWORD", "new_password", "passwd", "passphrase",
		"totp", "TOTP_code", "otp", "code", "mfa-code", "verificationCode", "token", "accessToken",
		"api_token", "refreshtoken", "secret", "clientSecret", "cookie", "Authorization", "bearer",
		"apikey", "api-key-secret", "privateKey", "private_key_pem", "pin", "credentials",
	} {
		e := audit.Event{Type: "x", Detail: map[string]string{key: "v"}}
		if err := e.Validate(); err == nil || !strings.Contains(err.Error(), "secret") {
			t.Errorf("detail key %q: got %v, want it rejected as a secret", key, err)
		}
	}
}

// secretKeys are detail keys to check looksSecret against looksSecretText.
var secretKeys = []string{
	"", "reason", "exit_status", "scopes", "expires_at", "agent", "customer", "password", "Password", "new_password",
	"TOTP_code", "verificationCode", "accessToken", "api-key-secret", "privateKey", "HTTPToken", "aB", "Ab", "a_B",
	"x1Token", "1Secret", "__pin__", "pinned", "spin", "codex", "opt", "passes", "pass", "by", "seedling",
	"caf\u00e9_code", "\u00c9t\u00e9Token", "\xff", strings.Repeat("k", audit.MaxDetailKeyBytes), strings.Repeat("t", 70) + "token",
}

func TestLooksSecretFastPath(t *testing.T) {
	for _, k := range secretKeys {
		if got, want := audit.LooksSecret(k), audit.LooksSecretText(k); got != want {
			t.Errorf("looksSecret(%q) = %v, looksSecretText = %v", k, got, want)
		}
	}
}

func FuzzLooksSecret(f *testing.F) {
	for _, k := range secretKeys {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, k string) {
		if got, want := audit.LooksSecret(k), audit.LooksSecretText(k); got != want {
			t.Errorf("looksSecret(%q) = %v, looksSecretText = %v", k, got, want)
		}
	})
}
