package identity

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// PasswordParams are the argon2id cost parameters.
type PasswordParams struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over memory
	Threads uint8  // lanes
}

// DefaultPasswordParams: 64 MiB, 2 passes, 2 lanes. This sits between the two
// OWASP argon2id settings (m=46 MiB,t=1,p=1 and m=19 MiB,t=2,p=1) and RFC
// 9106's low-memory option (m=64 MiB,t=3,p=4): memory-hard enough to make GPU
// guessing expensive, and about 155 ms per hash on the 2-core reference box
// (BenchmarkHashPassword), so a login stays well under a second with a
// Hasher running two at a time.
var DefaultPasswordParams = PasswordParams{Memory: 64 * 1024, Time: 2, Threads: 2}

// Bounds on parameters read back from an encoded hash. A hash row is trusted
// only so far: a poisoned row must not be able to make a login allocate
// gigabytes or spin for minutes.
const (
	MaxPasswordMemory  = 256 * 1024 // KiB (256 MiB)
	MaxPasswordTime    = 16
	MaxPasswordThreads = 16
)

// Password policy limits.
const (
	MinPasswordChars = 12  // Unicode code points
	MaxPasswordBytes = 256 // UTF-8 bytes
)

const (
	saltLen    = 16
	keyLen     = 32
	minSaltLen = 8
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 64
	maxPHCLen  = 256
)

// Policy errors, checked with errors.Is. People read them (the
// enrollment page, `admin user add`), so they name no package.
var (
	ErrPasswordTooShort = errors.New("password is shorter than 12 characters")
	ErrPasswordTooLong  = errors.New("password is longer than 256 bytes")
	ErrPasswordTrivial  = errors.New("password repeats a single character")
	ErrPasswordEncoding = errors.New("password is not valid UTF-8")
)

// ErrMalformedHash is wrapped by every error about an encoded hash that does
// not parse or is out of bounds.
var ErrMalformedHash = errors.New("identity: malformed password hash")

// CheckPasswordPolicy returns nil if pw may be set as a password: valid UTF-8,
// at least MinPasswordChars characters, at most MaxPasswordBytes bytes, and
// not one character repeated. The error never contains the password.
func CheckPasswordPolicy(pw string) error {
	if !utf8.ValidString(pw) {
		return ErrPasswordEncoding
	}
	if len(pw) > MaxPasswordBytes {
		return ErrPasswordTooLong
	}
	if utf8.RuneCountInString(pw) < MinPasswordChars {
		return ErrPasswordTooShort
	}
	first, _ := utf8.DecodeRuneInString(pw)
	if strings.Trim(pw, string(first)) == "" {
		return ErrPasswordTrivial
	}
	return nil
}

// Validate reports whether p can be used to hash a new password.
func (p PasswordParams) Validate() error {
	switch {
	case p.Threads < 1 || p.Threads > MaxPasswordThreads:
		return fmt.Errorf("identity: password params: threads %d out of range 1..%d", p.Threads, MaxPasswordThreads)
	case p.Time < 1 || p.Time > MaxPasswordTime:
		return fmt.Errorf("identity: password params: time %d out of range 1..%d", p.Time, MaxPasswordTime)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > MaxPasswordMemory:
		return fmt.Errorf("identity: password params: memory %d KiB out of range %d..%d", p.Memory, 8*uint32(p.Threads), MaxPasswordMemory)
	}
	return nil
}

// HashPassword hashes password with a fresh 16-byte salt from rand and
// returns the PHC string $argon2id$v=19$m=M,t=T,p=P$SALT$HASH (unpadded
// standard base64). It runs unbounded: concurrent callers should go through
// a Hasher so that only a few 64 MiB hashes are in memory at once.
func HashPassword(rand io.Reader, password string, p PasswordParams) (string, error) {
	if err := p.Validate(); err != nil {
		return "", err
	}
	salt := make([]byte, saltLen)
	if _, err := io.ReadFull(rand, salt); err != nil {
		return "", fmt.Errorf("identity: password salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, keyLen)
	return encodePHC(p, salt, key), nil
}

// CheckPassword reports whether password matches the encoded hash, comparing
// in constant time. needsRehash is true when the password matched but the
// hash was made with parameters other than DefaultPasswordParams (or another
// salt or key length); the caller should then store a fresh HashPassword.
// err is non-nil only when encoded is malformed or out of bounds.
func CheckPassword(encoded, password string) (ok bool, needsRehash bool, err error) {
	return checkPassword(encoded, password, DefaultPasswordParams)
}

func checkPassword(encoded, password string, want PasswordParams) (ok, needsRehash bool, err error) {
	h, err := parsePHC(encoded)
	if err != nil {
		return false, false, err
	}
	key := argon2.IDKey([]byte(password), h.salt, h.params.Time, h.params.Memory, h.params.Threads, uint32(len(h.key)))
	if subtle.ConstantTimeCompare(key, h.key) != 1 {
		return false, false, nil
	}
	return true, h.params != want || len(h.salt) != saltLen || len(h.key) != keyLen, nil
}

type phc struct {
	params PasswordParams
	salt   []byte
	key    []byte
}

var b64 = base64.RawStdEncoding.Strict()

func encodePHC(p PasswordParams, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// parsePHC parses exactly the form encodePHC writes: no optional fields, the
// parameters in m,t,p order, canonical decimals, unpadded base64, and every
// value within bounds.
func parsePHC(s string) (phc, error) {
	bad := func(format string, args ...any) (phc, error) {
		return phc{}, fmt.Errorf("%w: "+format, append([]any{ErrMalformedHash}, args...)...)
	}
	if len(s) > maxPHCLen {
		return bad("%d bytes, longer than %d", len(s), maxPHCLen)
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return bad("want 5 $-separated fields")
	}
	if parts[1] != "argon2id" {
		return bad("algorithm %q, want argon2id", parts[1])
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad("version %q, want v=%d", parts[2], argon2.Version)
	}
	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return bad("want parameters m,t,p")
	}
	var vals [3]uint64
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(kv[i], name+"=")
		if !ok {
			return bad("parameter %d: want %s=", i+1, name)
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || strconv.FormatUint(n, 10) != v {
			return bad("parameter %s: not a canonical decimal", name)
		}
		vals[i] = n
	}
	if vals[2] > MaxPasswordThreads {
		return bad("threads %d out of range 1..%d", vals[2], MaxPasswordThreads)
	}
	p := PasswordParams{Memory: uint32(vals[0]), Time: uint32(vals[1]), Threads: uint8(vals[2])}
	if err := p.Validate(); err != nil {
		return bad("%s", strings.TrimPrefix(err.Error(), "identity: password params: "))
	}
	// encoding/base64 skips \r and \n while decoding; a stored hash has
	// neither, so refuse them rather than accept a non-canonical form.
	if strings.ContainsAny(parts[4]+parts[5], "\r\n") {
		return bad("salt and hash must be unpadded base64 without line breaks")
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return bad("salt must be %d..%d bytes of unpadded base64", minSaltLen, maxSaltLen)
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) < minKeyLen || len(key) > maxKeyLen {
		return bad("hash must be %d..%d bytes of unpadded base64", minKeyLen, maxKeyLen)
	}
	return phc{params: p, salt: salt, key: key}, nil
}

// Hasher bounds the memory that password hashing uses: at most Concurrency
// hashes at the Hasher's parameters run at once, and a check against a hash
// stored with more memory takes proportionally more of the budget (a hash at
// the MaxPasswordMemory bound runs alone). Peak memory is therefore about
// max(Concurrency*Memory, MaxPasswordMemory). Its methods are safe for
// concurrent use.
type Hasher struct {
	params PasswordParams
	rand   io.Reader
	slots  int
	tokens chan struct{} // one per slot; a hash holds 1..slots of them
	gate   chan struct{} // capacity 1: held while acquiring tokens, so two waiters never deadlock half-served
}

// NewHasher returns a Hasher that hashes with p and runs at most concurrency
// hashes at p's memory cost at once. A nil rand means crypto/rand.Reader.
func NewHasher(rand io.Reader, p PasswordParams, concurrency int) (*Hasher, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if concurrency < 1 {
		return nil, fmt.Errorf("identity: hasher concurrency %d, want at least 1", concurrency)
	}
	if rand == nil {
		rand = cryptoRand
	}
	h := &Hasher{
		params: p,
		rand:   rand,
		slots:  concurrency,
		tokens: make(chan struct{}, concurrency),
		gate:   make(chan struct{}, 1),
	}
	for range concurrency {
		h.tokens <- struct{}{}
	}
	return h, nil
}

var cryptoRand io.Reader = rand.Reader

// Params returns the parameters new hashes are made with.
func (h *Hasher) Params() PasswordParams { return h.params }

// Hash is HashPassword within the Hasher's memory budget. It waits for room
// and returns ctx.Err() if ctx ends first.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	release, err := h.acquire(ctx, h.params.Memory)
	if err != nil {
		return "", err
	}
	defer release()
	return HashPassword(h.rand, password, h.params)
}

// Check is CheckPassword within the Hasher's memory budget; needsRehash
// compares against the Hasher's parameters.
func (h *Hasher) Check(ctx context.Context, encoded, password string) (ok, needsRehash bool, err error) {
	parsed, err := parsePHC(encoded)
	if err != nil {
		return false, false, err
	}
	release, err := h.acquire(ctx, parsed.params.Memory)
	if err != nil {
		return false, false, err
	}
	defer release()
	return checkPassword(encoded, password, h.params)
}

func (h *Hasher) acquire(ctx context.Context, memory uint32) (release func(), err error) {
	n := int((uint64(memory) + uint64(h.params.Memory) - 1) / uint64(h.params.Memory))
	n = max(1, min(n, h.slots))
	select {
	case h.gate <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("identity: waiting to hash: %w", ctx.Err())
	}
	got := 0
	defer func() { <-h.gate }()
	for got < n {
		select {
		case <-h.tokens:
			got++
		case <-ctx.Done():
			for range got {
				h.tokens <- struct{}{}
			}
			return nil, fmt.Errorf("identity: waiting to hash: %w", ctx.Err())
		}
	}
	return func() {
		for range n {
			h.tokens <- struct{}{}
		}
	}, nil
}
