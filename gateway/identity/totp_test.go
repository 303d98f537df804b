package identity

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"hash"
	"os/exec"
	"strings"
	"testing"
	"time"

	"supportgate/internal/realpeer"
)

// RFC 4226 appendix D.
func TestHOTPRFC4226(t *testing.T) {
	secret := []byte("12345678901234567890")
	want := []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"}
	for i, w := range want {
		if got := hotp(sha1.New, secret, uint64(i), 6); got != w {
			t.Errorf("hotp(counter %d) = %s, want %s", i, got, w)
		}
	}
}

// RFC 6238 appendix B: 8-digit codes for SHA1, SHA256 and SHA512.
func TestTOTPRFC6238(t *testing.T) {
	seeds := map[string][]byte{
		"SHA1":   []byte("12345678901234567890"),
		"SHA256": []byte("12345678901234567890123456789012"),
		"SHA512": []byte("1234567890123456789012345678901234567890123456789012345678901234"),
	}
	hashes := map[string]func() hash.Hash{"SHA1": sha1.New, "SHA256": sha256.New, "SHA512": sha512.New}
	tests := []struct {
		unix int64
		alg  string
		want string
	}{
		{59, "SHA1", "94287082"}, {59, "SHA256", "46119246"}, {59, "SHA512", "90693936"},
		{1111111109, "SHA1", "07081804"}, {1111111109, "SHA256", "68084774"}, {1111111109, "SHA512", "25091201"},
		{1111111111, "SHA1", "14050471"}, {1111111111, "SHA256", "67062674"}, {1111111111, "SHA512", "99943326"},
		{1234567890, "SHA1", "89005924"}, {1234567890, "SHA256", "91819424"}, {1234567890, "SHA512", "93441116"},
		{2000000000, "SHA1", "69279037"}, {2000000000, "SHA256", "90698825"}, {2000000000, "SHA512", "38618901"},
		{20000000000, "SHA1", "65353130"}, {20000000000, "SHA256", "77737706"}, {20000000000, "SHA512", "47863826"},
	}
	for _, tt := range tests {
		c := totpCounter(time.Unix(tt.unix, 0))
		if got := hotp(hashes[tt.alg], seeds[tt.alg], uint64(c), 8); got != tt.want {
			t.Errorf("%s at %d: got %s, want %s", tt.alg, tt.unix, got, tt.want)
		}
		if tt.alg == "SHA1" {
			if got, want := TOTPCode(seeds["SHA1"], time.Unix(tt.unix, 0)), tt.want[2:]; got != want {
				t.Errorf("TOTPCode at %d: got %s, want %s", tt.unix, got, want)
			}
		}
	}
}

func TestTOTPAgainstOathtool(t *testing.T) {
	oathtool := realpeer.Require(t, "oathtool")
	secrets := [][]byte{[]byte("12345678901234567890")}
	for range 3 {
		s, err := NewTOTPSecret(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, s)
	}
	times := []time.Time{
		time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 29, 0, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 30, 0, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(2038, 1, 19, 3, 14, 8, 0, time.UTC),
		time.Date(2100, 6, 1, 12, 0, 0, 0, time.UTC),
	}
	for _, secret := range secrets {
		enc := b32.EncodeToString(secret)
		for _, at := range times {
			out, err := exec.Command(oathtool, "--totp", "-b", enc, "--now", at.Format("2006-01-02 15:04:05 UTC")).CombinedOutput()
			if err != nil {
				t.Fatalf("oathtool: %v: %s", err, out)
			}
			want := strings.TrimSpace(string(out))
			if got := TOTPCode(secret, at); got != want {
				t.Errorf("TOTPCode at %s: got %s, want %s (oathtool)", at, got, want)
			}
			if _, ok := VerifyTOTP(secret, want, at, 0); !ok {
				t.Errorf("VerifyTOTP(oathtool code at %s) = false, want true", at)
			}
		}
	}
}

func TestVerifyTOTP(t *testing.T) {
	secret := []byte("12345678901234567890")
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := totpCounter(now)
	code := func(d int64) string { return hotp(sha1.New, secret, uint64(c+d), 6) }
	tests := []struct {
		name   string
		code   string
		last   int64
		wantC  int64
		wantOK bool
		secret []byte
	}{
		{"current", code(0), 0, c, true, secret},
		{"previous step", code(-1), 0, c - 1, true, secret},
		{"next step", code(1), 0, c + 1, true, secret},
		{"two steps old", code(-2), 0, 0, false, secret},
		{"two steps ahead", code(2), 0, 0, false, secret},
		{"replay of accepted", code(0), c, c, false, secret},
		{"older than accepted", code(-1), c, c, false, secret},
		{"later after accepted", code(1), c, c + 1, true, secret},
		{"after previous accepted", code(0), c - 1, c, true, secret},
		{"wrong code", "000000", 0, 0, code(0) == "000000", secret},
		{"short", code(0)[:5], 0, 0, false, secret},
		{"long", code(0) + "0", 0, 0, false, secret},
		{"non-digit", "12a456", 0, 0, false, secret},
		{"unicode digits", "١٢٣٤٥٦", 0, 0, false, secret},
		{"empty secret", code(0), 0, 0, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotC, gotOK := VerifyTOTP(tt.secret, tt.code, now, tt.last)
			if gotOK != tt.wantOK {
				t.Fatalf("ok: got %v, want %v", gotOK, tt.wantOK)
			}
			if gotOK && gotC != tt.wantC {
				t.Errorf("counter: got %d, want %d", gotC, tt.wantC)
			}
			if !gotOK && gotC != tt.last {
				t.Errorf("counter on failure: got %d, want lastCounter %d", gotC, tt.last)
			}
		})
	}
}

func TestTOTPURIRoundTrip(t *testing.T) {
	secret, err := NewTOTPSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) != 20 {
		t.Fatalf("secret length: got %d, want 20", len(secret))
	}
	tests := []struct{ issuer, account, wantPrefix string }{
		{"supportgate", "alice", "otpauth://totp/supportgate:alice?secret="},
		{"Acme Support", "bob@example.com", "otpauth://totp/Acme%20Support:bob%40example.com?secret="},
		{"a:b", "c&d=e?f", "otpauth://totp/a%3Ab:c%26d%3De%3Ff?secret="},
	}
	for _, tt := range tests {
		uri := TOTPURI(tt.issuer, tt.account, secret)
		if !strings.HasPrefix(uri, tt.wantPrefix) {
			t.Errorf("TOTPURI(%q, %q) = %s, want prefix %s", tt.issuer, tt.account, uri, tt.wantPrefix)
		}
		if want := "&issuer=" + escape(tt.issuer) + "&algorithm=SHA1&digits=6&period=30"; !strings.HasSuffix(uri, want) {
			t.Errorf("TOTPURI = %s, want suffix %s", uri, want)
		}
		got, err := ParseTOTPURI(uri)
		if err != nil {
			t.Fatalf("ParseTOTPURI(%s): %v", uri, err)
		}
		if !bytes.Equal(got, secret) {
			t.Errorf("ParseTOTPURI: got %x, want %x", got, secret)
		}
	}
}

func TestParseTOTPURIErrors(t *testing.T) {
	const s = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	tests := []struct{ name, uri string }{
		{"empty", ""},
		{"http", "https://totp/x:y?secret=" + s},
		{"hotp", "otpauth://hotp/x:y?secret=" + s},
		{"no label", "otpauth://totp/?secret=" + s},
		{"no secret", "otpauth://totp/x:y?issuer=x"},
		{"two secrets", "otpauth://totp/x:y?secret=" + s + "&secret=" + s},
		{"bad base32", "otpauth://totp/x:y?secret=GEZDGNBV1"},
		{"short secret", "otpauth://totp/x:y?secret=GEZDGNBVGY3TQOJQ"},
		{"sha256", "otpauth://totp/x:y?secret=" + s + "&algorithm=SHA256"},
		{"8 digits", "otpauth://totp/x:y?secret=" + s + "&digits=8"},
		{"period 60", "otpauth://totp/x:y?secret=" + s + "&period=60"},
		{"fragment", "otpauth://totp/x:y?secret=" + s + "#frag"},
		{"huge", "otpauth://totp/x:y?secret=" + strings.Repeat("A", 3000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTOTPURI(tt.uri)
			if !errors.Is(err, ErrMalformedTOTPURI) {
				t.Fatalf("got %v, want ErrMalformedTOTPURI", err)
			}
			if strings.Contains(err.Error(), s) {
				t.Errorf("error %q contains the secret", err)
			}
		})
	}
	// Lowercase and padded secrets, from other generators, are accepted.
	for _, uri := range []string{
		"otpauth://totp/x:y?secret=" + strings.ToLower(s),
		"otpauth://totp/x?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGE%3D%3D%3D%3D%3D%3D",
	} {
		if _, err := ParseTOTPURI(uri); err != nil {
			t.Errorf("ParseTOTPURI(%s): %v, want nil", uri, err)
		}
	}
}

func FuzzParseTOTPURI(f *testing.F) {
	f.Add(TOTPURI("supportgate", "alice", []byte("12345678901234567890")))
	f.Add("otpauth://totp/x?secret=gezdgnbvgy3tqojqgezdgnbvgy3tqojq&digits=6")
	f.Add("otpauth://hotp/x?secret=AAAA")
	f.Fuzz(func(t *testing.T, uri string) {
		secret, err := ParseTOTPURI(uri)
		if err != nil {
			return
		}
		if len(secret) < minTOTPSecret || len(secret) > maxTOTPSecret {
			t.Fatalf("accepted secret of %d bytes", len(secret))
		}
		again, err := ParseTOTPURI(TOTPURI("i", "a", secret))
		if err != nil || !bytes.Equal(again, secret) {
			t.Fatalf("round trip: got %x, %v; want %x", again, err, secret)
		}
	})
}
