package identity

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fastParams keeps the tests quick; the benchmark measures the defaults.
var fastParams = PasswordParams{Memory: 64, Time: 1, Threads: 1}

func TestHashAndCheckPassword(t *testing.T) {
	enc, err := HashPassword(rand.Reader, "correct horse battery", fastParams)
	if err != nil {
		t.Fatal(err)
	}
	if want := "$argon2id$v=19$m=64,t=1,p=1$"; !strings.HasPrefix(enc, want) {
		t.Fatalf("encoded = %s, want prefix %s", enc, want)
	}
	tests := []struct {
		name           string
		pw             string
		want           PasswordParams
		wantOK, rehash bool
	}{
		{"right password, same params", "correct horse battery", fastParams, true, false},
		{"right password, new params", "correct horse battery", DefaultPasswordParams, true, true},
		{"wrong password", "correct horse batterY", fastParams, false, false},
		{"empty password", "", fastParams, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := checkPassword(enc, tt.pw, tt.want)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.wantOK || rehash != tt.rehash {
				t.Errorf("got ok=%v rehash=%v, want ok=%v rehash=%v", ok, rehash, tt.wantOK, tt.rehash)
			}
		})
	}
	ok, rehash, err := CheckPassword(enc, "correct horse battery")
	if !ok || !rehash || err != nil {
		t.Errorf("CheckPassword: got %v %v %v, want true true nil (fast params are not the default)", ok, rehash, err)
	}
	enc2, _ := HashPassword(rand.Reader, "correct horse battery", fastParams)
	if enc == enc2 {
		t.Error("two hashes of one password are equal, want distinct salts")
	}
}

// Hashes made by the reference implementation's CLI (Debian package argon2,
// phc-winner-argon2 20171227), e.g.
// echo -n password | argon2 somesalt -id -t 2 -m 16 -p 4 -l 32 -e
func TestCheckPasswordReferenceVectors(t *testing.T) {
	tests := []struct{ pw, enc string }{
		{"password", "$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo"},
		{"correct horse battery", "$argon2id$v=19$m=1024,t=3,p=2$MDEyMzQ1Njc4OWFiY2RlZg$TIs44RbMK58WqDnu/JD2oz3xvK7PGyZ15A6OhrurMYk"},
		{"pässwörd ünïcode", "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$WktgTM7i7QUZoEan8/aOKA"},
	}
	for _, tt := range tests {
		ok, _, err := CheckPassword(tt.enc, tt.pw)
		if err != nil || !ok {
			t.Errorf("CheckPassword(%s) = %v, %v; want true, nil", tt.enc, ok, err)
		}
		if ok, _, _ := CheckPassword(tt.enc, tt.pw+"x"); ok {
			t.Errorf("CheckPassword(%s, wrong) = true, want false", tt.enc)
		}
	}
}

func TestParsePHCErrors(t *testing.T) {
	salt := b64.EncodeToString(bytes.Repeat([]byte{1}, 16))
	key := b64.EncodeToString(bytes.Repeat([]byte{2}, 32))
	good := "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key
	if _, err := parsePHC(good); err != nil {
		t.Fatalf("parsePHC(good): %v", err)
	}
	tests := []struct{ name, enc, wantMsg string }{
		{"empty", "", "5 $-separated"},
		{"argon2i", strings.Replace(good, "argon2id", "argon2i", 1), "algorithm"},
		{"old version", strings.Replace(good, "v=19", "v=16", 1), "version"},
		{"no version", "$argon2id$m=64,t=1,p=1$" + salt + "$" + key, "5 $-separated"},
		{"4 GiB", strings.Replace(good, "m=64", "m=4194304", 1), "memory"},
		{"memory overflow", strings.Replace(good, "m=64", "m=99999999999", 1), "canonical"},
		{"time 1000", strings.Replace(good, "t=1", "t=1000", 1), "time"},
		{"time 0", strings.Replace(good, "t=1", "t=0", 1), "time"},
		{"threads 0", strings.Replace(good, "p=1", "p=0", 1), "threads"},
		{"threads 255", strings.Replace(good, "p=1", "p=255", 1), "threads"},
		{"threads 256 wraps", strings.Replace(good, "p=1", "p=257", 1), "threads"},
		{"memory below 8p", strings.Replace(good, "m=64,t=1,p=1", "m=8,t=1,p=2", 1), "memory"},
		{"leading zero", strings.Replace(good, "m=64", "m=064", 1), "canonical"},
		{"plus sign", strings.Replace(good, "m=64", "m=+64", 1), "canonical"},
		{"reordered", strings.Replace(good, "m=64,t=1", "t=1,m=64", 1), "want m="},
		{"extra param", strings.Replace(good, "p=1", "p=1,keyid=x", 1), "m,t,p"},
		{"padded salt", strings.Replace(good, salt, salt+"==", 1), "salt"},
		{"short salt", strings.Replace(good, salt, "AAAA", 1), "salt"},
		{"bad key base64", strings.Replace(good, key, key[:len(key)-1]+"!", 1), "hash"},
		{"short key", strings.Replace(good, key, "AAAA", 1), "hash"},
		{"trailing", good + "$", "5 $-separated"},
		{"huge", good + strings.Repeat("A", 300), "longer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parsePHC(tt.enc)
			if !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("got %v, want ErrMalformedHash", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q, want it to mention %q", err, tt.wantMsg)
			}
			if ok, _, err := CheckPassword(tt.enc, "x"); ok || err == nil {
				t.Errorf("CheckPassword: got ok=%v err=%v, want false and an error", ok, err)
			}
		})
	}
}

func TestCheckPasswordPolicy(t *testing.T) {
	tests := []struct {
		name string
		pw   string
		want error
	}{
		{"ok", "correct horse battery", nil},
		{"exactly 12", "abcdefghijkl", nil},
		{"11", "abcdefghijk", ErrPasswordTooShort},
		{"empty", "", ErrPasswordTooShort},
		{"12 runes, more bytes", "ééééééééééée", nil},
		{"11 runes of 2 bytes", "ééééééééééé", ErrPasswordTooShort},
		{"256 bytes", strings.Repeat("ab", 128), nil},
		{"257 bytes", strings.Repeat("ab", 128) + "c", ErrPasswordTooLong},
		{"one char", strings.Repeat("a", 20), ErrPasswordTrivial},
		{"one multibyte char", strings.Repeat("é", 20), ErrPasswordTrivial},
		{"invalid utf-8", "abcdefghijkl\xff", ErrPasswordEncoding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CheckPasswordPolicy(tt.pw); !errors.Is(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPasswordParamsValidate(t *testing.T) {
	if err := DefaultPasswordParams.Validate(); err != nil {
		t.Fatalf("DefaultPasswordParams: %v", err)
	}
	for _, p := range []PasswordParams{
		{}, {Memory: 64, Time: 1}, {Memory: 64, Threads: 1}, {Memory: 7, Time: 1, Threads: 1},
		{Memory: MaxPasswordMemory + 1, Time: 1, Threads: 1}, {Memory: 1024, Time: MaxPasswordTime + 1, Threads: 1},
	} {
		if err := p.Validate(); err == nil {
			t.Errorf("%+v: got nil, want an error", p)
		}
		if _, err := HashPassword(rand.Reader, "x", p); err == nil {
			t.Errorf("HashPassword(%+v): got nil error, want one", p)
		}
	}
}

type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestHashPasswordRandFailure(t *testing.T) {
	if _, err := HashPassword(failReader{}, "x", fastParams); err == nil {
		t.Error("got nil error, want the reader's")
	}
}

func TestHasherBoundsConcurrency(t *testing.T) {
	h, err := NewHasher(nil, fastParams, 2)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := h.Hash(context.Background(), "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	// Hold every token and check that a waiter is bounded and cancellable.
	release, err := h.acquire(context.Background(), fastParams.Memory*2)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, _, err := h.Check(ctx, enc, "correct horse battery"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Check while full: got %v, want DeadlineExceeded", err)
	}
	release()

	var running, peak atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			rel, err := h.acquire(context.Background(), fastParams.Memory)
			if err != nil {
				t.Error(err)
				return
			}
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(2 * time.Millisecond)
			running.Add(-1)
			rel()
		})
	}
	wg.Wait()
	if got := peak.Load(); got > 2 {
		t.Errorf("peak concurrent hashes: got %d, want at most 2", got)
	}
	ok, rehash, err := h.Check(context.Background(), enc, "correct horse battery")
	if !ok || rehash || err != nil {
		t.Errorf("Check: got %v %v %v, want true false nil", ok, rehash, err)
	}
	// A stored hash bigger than the budget still runs (alone).
	big, _ := HashPassword(rand.Reader, "pw", PasswordParams{Memory: 1024, Time: 1, Threads: 1})
	if ok, rehash, err := h.Check(context.Background(), big, "pw"); !ok || !rehash || err != nil {
		t.Errorf("Check(big): got %v %v %v, want true true nil", ok, rehash, err)
	}
	if _, err := NewHasher(nil, fastParams, 0); err == nil {
		t.Error("NewHasher(concurrency 0): got nil error, want one")
	}
}

func FuzzParsePHC(f *testing.F) {
	f.Add("$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc")
	f.Add("$argon2id$v=19$m=64,t=1,p=1$AQEBAQEBAQEBAQEBAQEBAQ$AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI")
	f.Add("$argon2i$v=19$m=4096,t=3,p=1$c2FsdHNhbHQ$aGFzaA")
	f.Add("$argon2id$v=19$m=4294967295,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parsePHC(s)
		if err != nil {
			return
		}
		if err := h.params.Validate(); err != nil {
			t.Fatalf("accepted out-of-bounds params: %v", err)
		}
		if got := encodePHC(h.params, h.salt, h.key); got != s {
			t.Fatalf("accepted non-canonical form %q, canonical %q", s, got)
		}
	})
}

func BenchmarkHashPassword(b *testing.B) {
	// Reports milliseconds per hash at DefaultPasswordParams, the figure the
	// DefaultPasswordParams comment quotes.
	b.Run("default", func(b *testing.B) {
		for b.Loop() {
			if _, err := HashPassword(rand.Reader, "correct horse battery", DefaultPasswordParams); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/hash")
	})
}
