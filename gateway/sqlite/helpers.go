package sqlite

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"supportgate/session"
)

// SaveHelperEnrollment stores the helper a session enrolled, replacing any
// earlier one of the session.
func (s *Store) SaveHelperEnrollment(ctx context.Context, e session.HelperEnrollment) error {
	err := s.write(ctx, func(tx *wtx) error {
		_, err := tx.execSQL(`INSERT OR REPLACE INTO helper_enrollments (session, wg_key, host_key, address, created_at)
			VALUES (?, ?, ?, ?, ?)`, e.SessionID, e.WireGuardKey[:], e.SSHHostKey, e.Address.String(), e.At.UnixNano())
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: storing the helper of session %s: %w", short(e.SessionID), err)
	}
	return nil
}

// HelperEnrollments returns every stored helper enrollment.
func (s *Store) HelperEnrollments(ctx context.Context) ([]session.HelperEnrollment, error) {
	rows, err := s.reader.QueryContext(ctx, "SELECT session, wg_key, host_key, address, created_at FROM helper_enrollments ORDER BY session")
	if err != nil {
		return nil, fmt.Errorf("sqlite: reading helper enrollments: %w", closedErr(err))
	}
	defer rows.Close()
	var out []session.HelperEnrollment
	for rows.Next() {
		var (
			e       session.HelperEnrollment
			key     []byte
			addr    string
			created int64
		)
		if err := rows.Scan(&e.SessionID, &key, &e.SSHHostKey, &addr, &created); err != nil {
			return nil, fmt.Errorf("sqlite: reading helper enrollments: %w", err)
		}
		if len(key) != len(e.WireGuardKey) {
			return nil, fmt.Errorf("sqlite: helper of session %s: WireGuard key of %d bytes", short(e.SessionID), len(key))
		}
		copy(e.WireGuardKey[:], key)
		if e.Address, err = netip.ParseAddr(addr); err != nil {
			return nil, fmt.Errorf("sqlite: helper of session %s: %w", short(e.SessionID), err)
		}
		e.At = time.Unix(0, created).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: reading helper enrollments: %w", closedErr(err))
	}
	return out, nil
}

// DeleteHelperEnrollments deletes the enrollments of the sessions ids.
func (s *Store) DeleteHelperEnrollments(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	err := s.write(ctx, func(tx *wtx) error {
		for _, id := range ids {
			if _, err := tx.execSQL("DELETE FROM helper_enrollments WHERE session = ?", id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: deleting helper enrollments: %w", err)
	}
	return nil
}
