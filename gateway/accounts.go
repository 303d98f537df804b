package gateway

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"time"

	"supportgate/gateway/identity"
	"supportgate/gateway/users"
)

// EnrollTTL is how long an enrollment link stays usable.
const EnrollTTL = 24 * time.Hour

var userNameRE = regexp.MustCompile(`^[a-z][a-z0-9._-]{0,31}$`)

// NewUser is an account to create.
type NewUser struct {
	Name        string
	DisplayName string // defaults to Name
	Role        identity.Role
	Team        string
	// Password, if set, enrolls the account at once with a fresh TOTP
	// secret (the non-interactive form for scripts). If empty, the account
	// waits for its owner to enroll through a one-time link.
	Password string
}

// NewAccount is what CreateUser made.
type NewAccount struct {
	User        *users.User
	TOTPURI     string // otpauth:// URI of the TOTP secret
	EnrollToken string // one-time enrollment token, if the account must enroll
}

// Accounts creates users and enrollment links. The gateway uses it for the
// admin API and the first-run admin; `supportgate admin user add` uses it
// directly on the data directory.
type Accounts struct {
	Store  users.Store
	Hasher *identity.Hasher
	Issuer string // TOTP issuer shown in authenticator apps
	Now    func() time.Time
	Rand   io.Reader
}

// CheckUserName validates a login name. The names the gateway records for
// those who are not users (the customer, the system, the recorder) are
// refused: a user so named would read in the audit log, and on the
// customer's page, as one of them.
func CheckUserName(name string) error {
	if !userNameRE.MatchString(name) {
		return fmt.Errorf("%w: user name must be 1-32 of a-z 0-9 . _ - starting with a letter", errBadInput)
	}
	if slices.Contains(reservedNames, name) {
		return fmt.Errorf("%w: user name %q is reserved for the gateway's own records", errBadInput, name)
	}
	return nil
}

// reservedNames are the actors' names that no user may take.
var reservedNames = []string{"customer", "system", "recorder"}

var errBadInput = errors.New("invalid input")

func (a *Accounts) random() io.Reader {
	if a.Rand == nil {
		return rand.Reader
	}
	return a.Rand
}

// Create stores a new account.
func (a *Accounts) Create(ctx context.Context, nu NewUser) (*NewAccount, error) {
	if err := CheckUserName(nu.Name); err != nil {
		return nil, err
	}
	if !nu.Role.Valid() {
		return nil, fmt.Errorf("%w: unknown role %q", errBadInput, nu.Role)
	}
	if nu.DisplayName == "" {
		nu.DisplayName = nu.Name
	}
	if err := checkField("display name", nu.DisplayName, 100); err != nil {
		return nil, err
	}
	if err := checkField("team", nu.Team, 64); err != nil {
		return nil, err
	}
	secret, err := identity.NewTOTPSecret(a.random())
	if err != nil {
		return nil, err
	}
	u := &users.User{
		Name: nu.Name, DisplayName: nu.DisplayName, Role: string(nu.Role), Team: nu.Team,
		TOTPSecret: secret, CreatedAt: a.Now().UTC(), Version: 1,
	}
	out := &NewAccount{User: u, TOTPURI: identity.TOTPURI(a.Issuer, nu.Name, secret)}
	if nu.Password != "" {
		if err := identity.CheckPasswordPolicy(nu.Password); err != nil {
			return nil, fmt.Errorf("%w: %v", errBadInput, err)
		}
		if u.PasswordHash, err = a.Hasher.Hash(ctx, nu.Password); err != nil {
			return nil, err
		}
		u.Enrolled = true
	}
	if err := a.Store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, users.ErrExists) {
			// The store's wrapping names the store: no business of the caller's.
			return nil, fmt.Errorf("user %s: %w", nu.Name, users.ErrExists)
		}
		return nil, err
	}
	if !u.Enrolled {
		if out.EnrollToken, err = a.EnrollLink(ctx, u.Name); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// resetTries bounds how often Reset reads the account again after a
// concurrent write of it won the version race (see loginFailureTries).
const resetTries = 10

// Reset takes a user's sign-in away, for a lost or stolen phone or a
// forgotten password: every token of theirs is deleted first (API logins,
// the SSH certificates bound to them, enrollment links), then a new TOTP
// secret replaces the old one and the password is cleared, so that
// nothing the old phone or password holds opens the account again. With
// password set, the account is enrolled again at once with it (the
// non-interactive form, for scripts and for a lone admin's recovery on the
// data directory); otherwise its owner enrolls again through the one-time
// link in EnrollToken, as a new user does. A lock is kept: a locked
// account stays locked until an admin unlocks it, enrolled or not. The
// caller ends what the user holds open (the gateway: connections and
// sessions).
func (a *Accounts) Reset(ctx context.Context, name, password string) (*NewAccount, error) {
	hash := ""
	if password != "" {
		if err := identity.CheckPasswordPolicy(password); err != nil {
			return nil, fmt.Errorf("%w: %v", errBadInput, err)
		}
		var err error
		if hash, err = a.Hasher.Hash(ctx, password); err != nil {
			return nil, err
		}
	}
	secret, err := identity.NewTOTPSecret(a.random())
	if err != nil {
		return nil, err
	}
	var u *users.User
	for try := 0; ; try++ {
		if u, err = a.Store.GetUser(ctx, name); err != nil {
			return nil, err
		}
		if err := a.Store.DeleteUserTokens(ctx, name, ""); err != nil {
			return nil, err
		}
		u.TOTPSecret, u.TOTPLast = secret, 0
		u.PasswordHash, u.Enrolled = hash, hash != ""
		u.Failures, u.LastFailure, u.LockedUntil = 0, time.Time{}, time.Time{}
		u.Version++
		err = a.Store.UpdateUser(ctx, u)
		if err == nil {
			break
		}
		// A login or a failed guess stored the account first: read it
		// again, or whoever holds the old credentials could keep the
		// reset from ever taking.
		if !errors.Is(err, users.ErrConflict) || try+1 == resetTries {
			return nil, err
		}
	}
	// Again, now that the old secret is gone: a login checked against it
	// may have stored its token since the first deletion. One stored after
	// this one finds the new secret when it looks again (sameSignIn).
	if err := a.Store.DeleteUserTokens(ctx, name, ""); err != nil {
		return nil, err
	}
	out := &NewAccount{User: u, TOTPURI: identity.TOTPURI(a.Issuer, name, secret)}
	if !u.Enrolled {
		if out.EnrollToken, err = a.EnrollLink(ctx, name); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// EnrollLink replaces any enrollment token of the user with a fresh one.
func (a *Accounts) EnrollLink(ctx context.Context, name string) (string, error) {
	if err := a.Store.DeleteUserTokens(ctx, name, users.KindEnroll); err != nil {
		return "", err
	}
	tok, h, err := identity.NewToken(a.random(), identity.EnrollTokenPrefix)
	if err != nil {
		return "", err
	}
	now := a.Now().UTC()
	if err := a.Store.CreateToken(ctx, users.Token{Hash: h, User: name, Kind: users.KindEnroll, CreatedAt: now, ExpiresAt: now.Add(EnrollTTL)}); err != nil {
		return "", err
	}
	return tok, nil
}

func checkField(name, v string, maxLen int) error {
	if len(v) > maxLen {
		return fmt.Errorf("%w: %s longer than %d bytes", errBadInput, name, maxLen)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: %s contains control characters", errBadInput, name)
		}
	}
	return nil
}
