package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"supportgate/gateway/users"
)

const userCols = `name, display_name, role, team, password_hash, totp_secret, totp_last,
	enrolled, failures, last_failure, locked_until, disabled, created_at, version`

const insertUserSQL = `INSERT INTO users (` + userCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

const updateUserSQL = `UPDATE users SET display_name = ?, role = ?, team = ?, password_hash = ?,
	totp_secret = ?, totp_last = ?, enrolled = ?, failures = ?, last_failure = ?, locked_until = ?,
	disabled = ?, created_at = ?, version = ?
	WHERE name = ? AND version = ?`

func durationOf(n int64) time.Duration { return time.Duration(n) }

// userArgs returns the values of userCols for u with the given version.
func userArgs(u *users.User, version int64) ([]any, error) {
	var e encoder
	secret := u.TOTPSecret
	if secret == nil {
		secret = []byte{} // the column is NOT NULL
	}
	return []any{
		u.Name, u.DisplayName, u.Role, u.Team, u.PasswordHash, secret, u.TOTPLast,
		u.Enrolled, int64(u.Failures), e.time("last_failure", u.LastFailure),
		e.time("locked_until", u.LockedUntil), u.Disabled, e.time("created_at", u.CreatedAt), version,
	}, e.err
}

// CreateUser implements users.Store. The stored Version is 1.
func (s *Store) CreateUser(ctx context.Context, u *users.User) error {
	args, err := userArgs(u, 1)
	if err != nil {
		return fmt.Errorf("sqlite: creating user %s: %w", short(u.Name), err)
	}
	err = s.write(ctx, func(tx *wtx) error {
		_, err := tx.exec(s.stmts.insertUser, args...)
		return err
	})
	if isConstraint(err) {
		return fmt.Errorf("sqlite: creating user %s: %w", short(u.Name), users.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("sqlite: creating user %s: %w", short(u.Name), err)
	}
	return nil
}

// GetUser implements users.Store.
func (s *Store) GetUser(ctx context.Context, name string) (*users.User, error) {
	u, err := scanUser(s.stmts.getUser.QueryRowContext(ctx, name))
	if err != nil {
		return nil, fmt.Errorf("sqlite: user %s: %w", short(name), closedErr(err))
	}
	return u, nil
}

// UpdateUser implements users.Store.
func (s *Store) UpdateUser(ctx context.Context, u *users.User) error {
	args, err := userArgs(u, u.Version)
	if err != nil {
		return fmt.Errorf("sqlite: updating user %s: %w", short(u.Name), err)
	}
	args = append(args[1:], u.Name, u.Version-1)
	err = s.write(ctx, func(tx *wtx) error {
		res, err := tx.exec(s.stmts.updateUser, args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		var one int
		err = tx.queryRow(s.stmts.userExists, u.Name).Scan(&one)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return users.ErrNotFound
		case err != nil:
			return err
		}
		return users.ErrConflict
	})
	if err != nil {
		return fmt.Errorf("sqlite: updating user %s: %w", short(u.Name), err)
	}
	return nil
}

// ListUsers implements users.Store.
func (s *Store) ListUsers(ctx context.Context) ([]*users.User, error) {
	rows, err := s.reader.QueryContext(ctx, "SELECT "+userCols+" FROM users ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("sqlite: listing users: %w", closedErr(err))
	}
	defer rows.Close()
	var out []*users.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: listing users: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: listing users: %w", err)
	}
	return out, nil
}

// CountUsers implements users.Store.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.reader.QueryRowContext(ctx, "SELECT COUNT(*) FROM users").Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: counting users: %w", closedErr(err))
	}
	return n, nil
}

func scanUser(r scanner) (*users.User, error) {
	var (
		u                            users.User
		failures                     int64
		lastFailure, locked, created int64
		secret                       []byte
	)
	err := r.Scan(&u.Name, &u.DisplayName, &u.Role, &u.Team, &u.PasswordHash, &secret, &u.TOTPLast,
		&u.Enrolled, &failures, &lastFailure, &locked, &u.Disabled, &created, &u.Version)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, users.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if len(secret) > 0 {
		u.TOTPSecret = secret // Scan into *[]byte copies
	}
	u.Failures = int(failures)
	u.LastFailure, u.LockedUntil, u.CreatedAt = fromNanos(lastFailure), fromNanos(locked), fromNanos(created)
	return &u, nil
}

// CreateToken implements users.Store; a hash already stored is ErrExists.
func (s *Store) CreateToken(ctx context.Context, t users.Token) error {
	var e encoder
	h := t.Hash
	args := []any{h[:], t.User, t.Kind, e.time("created_at", t.CreatedAt), e.time("expires_at", t.ExpiresAt)}
	if e.err != nil {
		return fmt.Errorf("sqlite: creating %s token for %s: %w", t.Kind, short(t.User), e.err)
	}
	err := s.write(ctx, func(tx *wtx) error {
		_, err := tx.exec(s.stmts.insertToken, args...)
		return err
	})
	if isConstraint(err) {
		return fmt.Errorf("sqlite: creating %s token for %s: %w", t.Kind, short(t.User), users.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("sqlite: creating %s token for %s: %w", t.Kind, short(t.User), err)
	}
	return nil
}

// GetToken implements users.Store.
func (s *Store) GetToken(ctx context.Context, hash [32]byte) (users.Token, error) {
	var (
		t                users.Token
		h                []byte
		created, expires int64
	)
	err := s.stmts.getToken.QueryRowContext(ctx, hash[:]).Scan(&h, &t.User, &t.Kind, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		err = users.ErrNotFound
	}
	if err == nil {
		t.Hash, err = hash32("hash", h)
	}
	if err != nil {
		return users.Token{}, fmt.Errorf("sqlite: token: %w", closedErr(err))
	}
	t.CreatedAt, t.ExpiresAt = fromNanos(created), fromNanos(expires)
	return t, nil
}

// DeleteToken implements users.Store; of concurrent deletes of one token
// exactly one succeeds, the others get ErrNotFound.
func (s *Store) DeleteToken(ctx context.Context, hash [32]byte) error {
	err := s.write(ctx, func(tx *wtx) error {
		res, err := tx.exec(s.stmts.deleteToken, hash[:])
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err == nil && n == 0 {
			err = users.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: deleting token: %w", err)
	}
	return nil
}

// DeleteUserTokens implements users.Store.
func (s *Store) DeleteUserTokens(ctx context.Context, user, kind string) error {
	err := s.write(ctx, func(tx *wtx) error {
		var err error
		if kind == "" {
			_, err = tx.execSQL("DELETE FROM tokens WHERE user = ?", user)
		} else {
			_, err = tx.execSQL("DELETE FROM tokens WHERE user = ? AND kind = ?", user, kind)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: deleting tokens of %s: %w", short(user), err)
	}
	return nil
}

// DeleteExpiredTokens implements users.Store: it removes tokens whose
// ExpiresAt is before now.
func (s *Store) DeleteExpiredTokens(ctx context.Context, now time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *wtx) error {
		res, err := tx.execSQL("DELETE FROM tokens WHERE expires_at < ?", filterNanos(now))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: deleting expired tokens: %w", err)
	}
	return int(n), nil
}
