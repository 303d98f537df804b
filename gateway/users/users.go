// Package users defines the gateway's accounts and API tokens and the Store
// that persists them. Credential checks (argon2id, TOTP, lockout) live in
// package identity; this package only says what is stored.
package users

import (
	"context"
	"encoding/hex"
	"errors"
	"time"
)

// Sentinel errors.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrConflict = errors.New("changed concurrently")
)

// User is an agent, supervisor, auditor or admin account.
type User struct {
	Name        string // login name: lowercase letters, digits, '.', '-', '_'
	DisplayName string // verified name shown to customers
	Role        string // agent, supervisor, auditor, admin
	Team        string

	PasswordHash string // argon2id PHC string; empty until enrolled
	TOTPSecret   []byte // raw secret; empty until enrolled
	TOTPLast     int64  // last accepted TOTP counter: a code is accepted once
	Enrolled     bool   // password and TOTP set and confirmed

	Failures    int       // consecutive failed logins
	LastFailure time.Time // when the last counted failure happened
	LockedUntil time.Time // lockout after too many failures
	Disabled    bool      // locked by an admin until unlocked

	CreatedAt time.Time
	Version   int64 // bumped on every update; UpdateUser checks it
}

// Token kinds.
const (
	KindAPI    = "api"    // bearer token from login, short-lived
	KindEnroll = "enroll" // one-time enrollment link
)

// Token is a bearer or enrollment token, stored only as a hash.
type Token struct {
	Hash      [32]byte
	User      string
	Kind      string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// SSHLoginExtension is the SSH user certificate extension that binds a
// certificate to the login that asked for it: its value is the LoginID of
// the login's bearer token. The gateway's user CA signs it with the rest of
// the certificate; the bastion refuses the certificate once that token is
// gone (signed out, expired, revoked).
const SSHLoginExtension = "login@supportgate"

// ErrMalformedLoginID is returned by ParseLoginID.
var ErrMalformedLoginID = errors.New("malformed login id")

// LoginID names the login whose bearer token has hash h, outside the
// store: 64 lowercase hex digits of the hash. It is the hash, never the
// token, so it opens nothing (every route wants the token itself, and a
// 256-bit random token cannot be found from its SHA-256); and it is the
// key the store already finds tokens by, so the bastion needs no second
// index or column to check a certificate's login. It goes only to the
// token's own holder, in their certificate, and to the bastion.
func LoginID(h [32]byte) string { return hex.EncodeToString(h[:]) }

// ParseLoginID returns the token hash that LoginID encoded as s.
func ParseLoginID(s string) ([32]byte, error) {
	var h [32]byte
	if len(s) != hex.EncodedLen(len(h)) {
		return h, ErrMalformedLoginID
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil || LoginID(h) != s {
		return [32]byte{}, ErrMalformedLoginID // not hex, or not in LoginID's (lowercase) form
	}
	return h, nil
}

// Store persists users and tokens. Implementations pass
// userstest.RunStoreTests. Methods are safe for concurrent use.
type Store interface {
	// CreateUser stores a new user with Version 1; ErrExists if the name is taken.
	CreateUser(ctx context.Context, u *User) error
	// GetUser returns the user or ErrNotFound.
	GetUser(ctx context.Context, name string) (*User, error)
	// UpdateUser stores u if the stored Version is u.Version-1, else ErrConflict.
	UpdateUser(ctx context.Context, u *User) error
	// ListUsers returns every user, by name.
	ListUsers(ctx context.Context) ([]*User, error)
	// CountUsers returns how many users exist.
	CountUsers(ctx context.Context) (int, error)

	// CreateToken stores a token.
	CreateToken(ctx context.Context, t Token) error
	// GetToken returns the token with the hash, or ErrNotFound.
	GetToken(ctx context.Context, hash [32]byte) (Token, error)
	// DeleteToken removes a token (a used enrollment link); ErrNotFound if absent,
	// so that exactly one of two concurrent deletes succeeds.
	DeleteToken(ctx context.Context, hash [32]byte) error
	// DeleteUserTokens removes every token of a user of the kind ("" for all).
	DeleteUserTokens(ctx context.Context, user, kind string) error
	// DeleteExpiredTokens removes tokens that expired before now.
	DeleteExpiredTokens(ctx context.Context, now time.Time) (int, error)
}
