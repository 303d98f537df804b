package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"supportgate/gateway"
	"supportgate/gateway/audit"
	"supportgate/gateway/identity"
	"supportgate/gateway/sqlite"
	"supportgate/session"
)

// runAdminClockReset accepts the wall clock over stored records dated
// ahead of it. serve never lets the gateway's time go back below the
// newest stored record (steadyClock), so that a wall clock set back
// stretches no deadline; a record written while the host's clock ran
// ahead (it once read 2099, a bad NTP step) would hold the gateway's time
// there for good. With serve stopped, this writes a gateway.clock_reset
// audit record by the wall clock, from which on serve counts (see
// sqlite.Store.HighWater), after revoking what was dated by the clock set
// aside: every login (and the SSH certificates bound to them) and
// enrollment link, whose expiry would lie that far ahead; the failed-login
// lockouts, which would last that long, are brought back to the wall clock
// (clampLockouts). It refuses while
// sessions are open, whose deadlines were set by that clock too: they are
// ended first, with serve running (session revoke, admin user lock), or
// here with --end-sessions, which revokes each as local-admin at the
// reset's time, audited as online (gateway.EndOpenSessions). The heartbeat
// serve stored by that clock needs nothing here: the reset record sets it
// aside (sqlite.Store.HighWater).
func runAdminClockReset(env *cliEnv, args []string) error {
	fs := newFlags(env, "admin clock reset", "--data DIR [--end-sessions]")
	dataDir := fs.String("data", "./data", "data `directory` of a stopped gateway")
	endSessions := fs.Bool("end-sessions", false, "end (revoke) the sessions still open, requested or active, instead of refusing")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return &exitError{code: 2, msg: "usage: supportgate admin clock reset --data DIR [--end-sessions]"}
	}
	st, mat, unlock, err := openStoppedData(*dataDir, "the clock is reset with serve stopped")
	if err != nil {
		return err
	}
	defer unlock()
	ctx := context.Background()
	newest, err := st.HighWater(ctx)
	if err != nil {
		return err
	}
	wall := time.Now().UTC()
	ahead := newest.Sub(wall)
	if ahead <= clockTolerance {
		fmt.Fprintf(env.stdout, "the wall clock (%s) is not behind the newest stored record (%s): nothing to reset\n",
			wall.Format(time.RFC3339), newest.UTC().Format(time.RFC3339))
		return nil
	}
	open, err := st.OpenSessions(ctx)
	if err != nil {
		return err
	}
	if len(open) > 0 && !*endSessions {
		n := fmt.Sprintf("%d sessions are", len(open))
		if len(open) == 1 {
			n = "1 session is"
		}
		return fmt.Errorf("%s still open, with deadlines set by the clock that ran ahead: start serve, end them (supportgate session revoke ID, or admin user lock), stop serve and run this again; or add --end-sessions to end them here as revoked", n)
	}
	log, err := audit.New(audit.Config{Store: st, Signer: mat.SigningKey, Now: func() time.Time { return wall }})
	if err != nil {
		return err
	}
	if len(open) > 0 {
		ended, err := gateway.EndOpenSessions(ctx, gateway.OfflineEnd{Store: st, Audit: log, RecordingsDir: filepath.Join(*dataDir, gateway.RecordingsDir),
			At: wall, By: session.Actor{Name: "local-admin", Role: "admin", Remote: "local"}})
		for _, s := range ended {
			was := "active"
			if s.ApprovedAt.IsZero() {
				was = "requested"
			}
			fmt.Fprintf(env.stdout, "ended session %s (%s, agent %s, customer %q): %s\n", s.ID, was, s.Agent, s.Customer, s.EndReason)
		}
		if err != nil {
			log.Close()
			return fmt.Errorf("ended %d of the %d open sessions, so the clock is not reset (run it again): %w", len(ended), len(open), err)
		}
	}
	n, err := revokeAllTokens(ctx, st)
	if err != nil {
		log.Close()
		return err
	}
	locks, err := clampLockouts(ctx, st, wall)
	if err != nil {
		log.Close()
		return err
	}
	ws, ns, as := wall.Format(time.RFC3339Nano), newest.UTC().Format(time.RFC3339Nano), ahead.Round(time.Second).String()
	_, aerr := log.Append(ctx, audit.Event{Type: sqlite.ClockResetEvent, Actor: "local-admin", Role: "admin", Remote: "local",
		Detail: map[string]string{"wall": ws, "newest": ns, "ahead": as, "users_signed_out": strconv.Itoa(n),
			"lockouts_clamped": strconv.Itoa(locks), "via": "cli"}})
	if err := errors.Join(aerr, log.Close()); err != nil {
		return fmt.Errorf("clock reset not recorded (the logins are revoked; run it again): %w", err)
	}
	fmt.Fprintf(env.stdout, "accepted the wall clock (%s) over the newest stored record (%s, %s ahead); "+
		"signed out %d users (logins, SSH certificates and enrollment links revoked: they sign in again, and unenrolled users need admin user reenroll)\n",
		ws, ns, as, n)
	if locks > 0 {
		who := fmt.Sprintf("%d users", locks)
		if locks == 1 {
			who = "1 user"
		}
		fmt.Fprintf(env.stdout, "moved the failed-login lockouts of %s, dated by the clock that ran ahead, to the wall clock: they end within %v\n",
			who, identity.DefaultLockout.LockFor)
	}
	return nil
}

// clampLockouts brings the failed-login lockouts dated by the clock set
// aside back to the wall clock: a lock ending later than the longest lock
// serve sets (identity.DefaultLockout.LockFor) from wall ends then instead,
// and a failure dated after wall counts as failed at wall, so that nobody
// stays locked out until the time that clock had reached, nor has failures
// that never age. Locks within the wall clock's reach are left as they are.
// It is idempotent, for a reset run again after a failure, and returns how
// many users it changed.
func clampLockouts(ctx context.Context, st *sqlite.Store, wall time.Time) (int, error) {
	us, err := st.ListUsers(ctx)
	if err != nil {
		return 0, err
	}
	longest := wall.Add(identity.DefaultLockout.LockFor)
	n := 0
	for _, u := range us {
		changed := false
		if u.LockedUntil.After(longest) {
			u.LockedUntil, changed = longest, true
		}
		if u.LastFailure.After(wall) {
			u.LastFailure, changed = wall, true
		}
		if !changed {
			continue
		}
		u.Version++
		if err := st.UpdateUser(ctx, u); err != nil {
			return n, fmt.Errorf("moving the lockout of %s back to the wall clock: %w", u.Name, err)
		}
		n++
	}
	return n, nil
}

// revokeAllTokens deletes every user's tokens and returns how many users
// there were.
func revokeAllTokens(ctx context.Context, st *sqlite.Store) (int, error) {
	us, err := st.ListUsers(ctx)
	if err != nil {
		return 0, err
	}
	for _, u := range us {
		if err := st.DeleteUserTokens(ctx, u.Name, ""); err != nil {
			return 0, fmt.Errorf("revoking the tokens of %s: %w", u.Name, err)
		}
	}
	return len(us), nil
}
