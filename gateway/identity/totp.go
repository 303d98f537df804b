package identity

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/url"
	"strings"
	"time"
)

// TOTP parameters: RFC 6238 with HMAC-SHA1, 6 digits and a 30 s step, the
// settings every authenticator app supports.
const (
	TOTPDigits       = 6
	TOTPPeriod       = 30 * time.Second
	TOTPSecretLength = 20 // bytes (160 bits, RFC 4226 R6's recommendation)

	minTOTPSecret = 16 // RFC 4226 R6: at least 128 bits
	maxTOTPSecret = 64
	maxTOTPURI    = 2048
)

// ErrMalformedTOTPURI is wrapped by every ParseTOTPURI error.
var ErrMalformedTOTPURI = errors.New("identity: malformed otpauth URI")

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewTOTPSecret returns a fresh 20-byte TOTP secret read from rand.
func NewTOTPSecret(rand io.Reader) ([]byte, error) {
	secret := make([]byte, TOTPSecretLength)
	if _, err := io.ReadFull(rand, secret); err != nil {
		return nil, fmt.Errorf("identity: totp secret: %w", err)
	}
	return secret, nil
}

// TOTPURI returns the Key URI that authenticator apps import (usually as a
// QR code):
//
//	otpauth://totp/Issuer:account?secret=BASE32&issuer=Issuer&algorithm=SHA1&digits=6&period=30
//
// Issuer and account are percent-encoded (a space is %20, a colon %3A) so
// neither can break the label apart. The URI contains the secret: treat it
// as one.
func TOTPURI(issuer, account string, secret []byte) string {
	return "otpauth://totp/" + escape(issuer) + ":" + escape(account) +
		"?secret=" + b32.EncodeToString(secret) +
		"&issuer=" + escape(issuer) +
		"&algorithm=SHA1&digits=6&period=30"
}

// escape percent-encodes everything but RFC 3986 unreserved characters.
func escape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// ParseTOTPURI returns the secret of an otpauth://totp/ URI. It accepts only
// what VerifyTOTP checks: algorithm SHA1, 6 digits and period 30 when those
// parameters are present, and a secret of 16 to 64 bytes in base32 (any case,
// padding optional). Errors never contain the secret.
func ParseTOTPURI(uri string) (secret []byte, err error) {
	bad := func(format string, args ...any) ([]byte, error) {
		return nil, fmt.Errorf("%w: "+format, append([]any{ErrMalformedTOTPURI}, args...)...)
	}
	if len(uri) > maxTOTPURI {
		return bad("%d bytes, longer than %d", len(uri), maxTOTPURI)
	}
	u, err := url.Parse(uri)
	if err != nil {
		return bad("not a URL")
	}
	if u.Scheme != "otpauth" {
		return bad("scheme %q, want otpauth", u.Scheme)
	}
	if u.Host != "totp" {
		return bad("type %q, want totp", u.Host)
	}
	if u.Opaque != "" || u.User != nil || u.Fragment != "" {
		return bad("unexpected URL parts")
	}
	if label := strings.TrimPrefix(u.Path, "/"); label == "" {
		return bad("missing label")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return bad("query does not parse")
	}
	for name, want := range map[string]string{"algorithm": "SHA1", "digits": "6", "period": "30"} {
		vs, ok := q[name]
		if !ok {
			continue
		}
		if len(vs) != 1 || !strings.EqualFold(vs[0], want) {
			return bad("unsupported %s, want %s", name, want)
		}
	}
	vs := q["secret"]
	if len(vs) != 1 || vs[0] == "" {
		return bad("want exactly one secret parameter")
	}
	enc := strings.TrimRight(strings.ToUpper(vs[0]), "=")
	secret, err = b32.DecodeString(enc)
	if err != nil {
		return bad("secret is not base32")
	}
	if len(secret) < minTOTPSecret || len(secret) > maxTOTPSecret {
		return bad("secret is %d bytes, want %d..%d", len(secret), minTOTPSecret, maxTOTPSecret)
	}
	return secret, nil
}

// TOTPCode returns the 6-digit code for secret at t.
func TOTPCode(secret []byte, t time.Time) string {
	return hotp(sha1.New, secret, uint64(totpCounter(t)), TOTPDigits)
}

// VerifyTOTP checks code against secret at now, accepting the previous,
// current and next 30 s step to allow for clock drift. Only steps strictly
// after lastCounter count, so an accepted code cannot be replayed and no
// code from before it works either; the caller stores the returned counter
// as the new lastCounter (0 for a fresh secret). On failure counter is
// lastCounter. Comparisons are constant time; code must be exactly six ASCII
// digits.
func VerifyTOTP(secret []byte, code string, now time.Time, lastCounter int64) (counter int64, ok bool) {
	if len(secret) == 0 || len(code) != TOTPDigits {
		return lastCounter, false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return lastCounter, false
		}
	}
	c := totpCounter(now)
	found := int64(0)
	matched := 0
	// Check every candidate, newest first, so the timing does not depend on
	// which one matched; keep the oldest acceptable match so that the later
	// codes stay usable.
	for cand := c + 1; cand >= c-1; cand-- {
		m := subtle.ConstantTimeCompare([]byte(hotp(sha1.New, secret, uint64(cand), TOTPDigits)), []byte(code))
		if cand > lastCounter && m == 1 {
			found, matched = cand, 1
		}
	}
	if matched == 0 {
		return lastCounter, false
	}
	return found, true
}

func totpCounter(t time.Time) int64 {
	s := t.Unix()
	step := int64(TOTPPeriod / time.Second)
	c := s / step
	if s%step < 0 {
		c--
	}
	return c
}

// hotp is RFC 4226's HOTP with the given hash and number of digits (1..9).
func hotp(h func() hash.Hash, secret []byte, counter uint64, digits int) string {
	mac := hmac.New(h, secret)
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, bin%mod)
}
