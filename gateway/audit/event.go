package audit

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on the size of an Event, enforced by Event.Validate.
const (
	MaxTypeBytes      = 64   // Type
	MaxFieldBytes     = 1024 // Actor, Role, Session, Remote
	MaxDetailKeys     = 32   // entries in Detail
	MaxDetailKeyBytes = 64   // each Detail key
	MaxDetailValBytes = 1024 // each Detail value
)

// ErrInvalidEvent is wrapped by the errors of Event.Validate and by Append for
// events it refuses.
var ErrInvalidEvent = errors.New("invalid event")

// Event is what callers record.
type Event struct {
	Time    time.Time         `json:"time"`              // set by Log from its clock if zero
	Type    string            `json:"type"`              // e.g. "login.success", "session.approved"
	Actor   string            `json:"actor,omitempty"`   // user name, "customer" or "system"
	Role    string            `json:"role,omitempty"`    // the actor's role, if any
	Session string            `json:"session,omitempty"` // session id, if any
	Remote  string            `json:"remote,omitempty"`  // client address
	Detail  map[string]string `json:"detail,omitempty"`  // small, non-secret facts
}

// secretWords are detail-key words that suggest a secret. A key is split into
// words at non-letters/digits and at lower-to-upper case changes; any word in
// this set rejects it. Callers that mean something harmless pick another
// name ("exit_status", not "exit_code").
var secretWords = map[string]bool{
	"password": true, "passwd": true, "passphrase": true, "pass": true, "pwd": true,
	"pin": true, "totp": true, "otp": true, "code": true, "passcode": true,
	"token": true, "secret": true, "cookie": true, "credential": true, "credentials": true,
	"authorization": true, "bearer": true, "apikey": true, "privatekey": true,
	"seed": true, "salt": true,
}

// secretParts catch the same words run together with others ("accesstoken").
var secretParts = []string{"password", "passwd", "passphrase", "totp", "token", "secret", "credential", "apikey", "privatekey"}

// Validate reports whether e is fit to record: Type is 1 to MaxTypeBytes of
// [a-z0-9._-], the other fields are valid UTF-8 within their limits, and no
// Detail key looks like it names a secret (password, totp, token, secret,
// code and similar words, in any case). It is a safety net, not a licence:
// never put secrets into an Event at all.
func (e Event) Validate() error {
	if e.Type == "" {
		return fmt.Errorf("audit: %w: type is empty", ErrInvalidEvent)
	}
	if len(e.Type) > MaxTypeBytes {
		return fmt.Errorf("audit: %w: type is %d bytes, limit %d", ErrInvalidEvent, len(e.Type), MaxTypeBytes)
	}
	for _, c := range e.Type {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("audit: %w: type %q: only a-z, 0-9, '.', '_' and '-' are allowed", ErrInvalidEvent, e.Type)
		}
	}
	if !e.Time.IsZero() && (e.Time.Year() < 1 || e.Time.Year() > 9999) {
		return fmt.Errorf("audit: %w: time %v is out of range", ErrInvalidEvent, e.Time)
	}
	for _, f := range []struct{ name, v string }{
		{"actor", e.Actor}, {"role", e.Role}, {"session", e.Session}, {"remote", e.Remote},
	} {
		if err := checkString(f.name, f.v, MaxFieldBytes); err != nil {
			return err
		}
	}
	if len(e.Detail) > MaxDetailKeys {
		return fmt.Errorf("audit: %w: detail has %d keys, limit %d", ErrInvalidEvent, len(e.Detail), MaxDetailKeys)
	}
	for k, v := range e.Detail {
		if k == "" {
			return fmt.Errorf("audit: %w: empty detail key", ErrInvalidEvent)
		}
		if err := checkString("detail key", k, MaxDetailKeyBytes); err != nil {
			return err
		}
		if looksSecret(k) {
			return fmt.Errorf("audit: %w: detail key %q may hold a secret; secrets never go into audit events", ErrInvalidEvent, k)
		}
		if len(v) > MaxDetailValBytes || !utf8.ValidString(v) {
			return checkString(fmt.Sprintf("detail %q", k), v, MaxDetailValBytes)
		}
	}
	return nil
}

func checkString(name, v string, limit int) error {
	if len(v) > limit {
		return fmt.Errorf("audit: %w: %s is %d bytes, limit %d", ErrInvalidEvent, name, len(v), limit)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("audit: %w: %s is not valid UTF-8", ErrInvalidEvent, name)
	}
	return nil
}

// looksSecret reports whether a detail key names something secret: a
// word of it (see secretWords) is a secret word, or the words run
// together contain one of secretParts. ASCII keys of at most
// MaxDetailKeyBytes, which is every key the gateway writes, are checked
// without allocating; others by looksSecretText.
func looksSecret(key string) bool {
	var buf [MaxDetailKeyBytes]byte
	if len(key) > len(buf) {
		return looksSecretText(key)
	}
	joined := buf[:0] // the words, lower case, run together
	start := 0        // where the current word begins in joined
	endWord := func() bool {
		w := joined[start:]
		start = len(joined)
		return len(w) > 0 && secretWords[string(w)]
	}
	var prev byte
	for i := 0; i < len(key); i++ {
		c := key[i]
		lower, upper := 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z'
		switch {
		case c >= utf8.RuneSelf:
			return looksSecretText(key)
		case !lower && !upper && !('0' <= c && c <= '9'):
			if endWord() {
				return true
			}
		case upper && 'a' <= prev && prev <= 'z':
			if endWord() {
				return true
			}
			joined = append(joined, c+'a'-'A')
		case upper:
			joined = append(joined, c+'a'-'A')
		default:
			joined = append(joined, c)
		}
		prev = c
	}
	if endWord() {
		return true
	}
	for _, p := range secretParts {
		if bytes.Contains(joined, []byte(p)) {
			return true
		}
	}
	return false
}

// looksSecretText is looksSecret for any key.
func looksSecretText(key string) bool {
	var words []string
	var cur strings.Builder
	var prev rune
	flush := func() {
		if cur.Len() > 0 {
			words = append(words, strings.ToLower(cur.String()))
			cur.Reset()
		}
	}
	for _, c := range key {
		switch {
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			flush()
		case unicode.IsUpper(c) && unicode.IsLower(prev):
			flush()
			cur.WriteRune(c)
		default:
			cur.WriteRune(c)
		}
		prev = c
	}
	flush()
	joined := strings.Join(words, "")
	for _, w := range words {
		if secretWords[w] {
			return true
		}
	}
	for _, p := range secretParts {
		if strings.Contains(joined, p) {
			return true
		}
	}
	return false
}
