package main

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"supportgate/gateway"
	"supportgate/gateway/audit"
	"supportgate/gateway/identity"
	"supportgate/gateway/sqlite"
)

// TestE2ERestartClockBehind: serve restarts on a database whose newest
// record is hours ahead of the host's wall clock (the clock was set back
// while the gateway was down). serve says so, in its log and in the audit
// log, and the gateway's time runs on from that record: a session whose
// box ended by then ends at once, and a bearer token that expired by then
// is refused, rather than both living the hours again.
func TestE2ERestartClockBehind(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	g := newGW(t, `{"min_duration": "1s"}`)
	alice := g.user("alice", "agent")
	s := g.newSession(alice, "view", "30m")
	g.browser(s.ConsentURL).approve(`["view"]`)
	bobURI := g.account("bob", "agent", "")
	g.kill()

	// The newest record: written, by the clock of then, 9 hours from now
	// (a token lives at most 8).
	const behind = 9 * time.Hour
	ahead := time.Now().Add(behind)
	noteAt(t, g.data, ahead)

	g.start()
	logged := regexp.MustCompile(`level=ERROR msg="wall clock is behind the newest stored record[^"]*" wall=\S+ newest=\S+ behind=(\S+)`).FindStringSubmatch(g.stderr.String())
	if logged == nil {
		t.Errorf("serve logged no error about its clock:\n%s", g.stderr.String())
	} else if d, err := time.ParseDuration(logged[1]); err != nil || d < behind-time.Minute || d > behind {
		t.Errorf("serve logged the clock %s behind, want about %v", logged[1], behind)
	}

	// The session's box ended by the newest record's time: it ends now.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(g.data, dbFile)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var state, reason string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if err := db.QueryRow(`SELECT state, end_reason FROM sessions WHERE id = ?`, s.ID).Scan(&state, &reason); err != nil {
			t.Fatal(err)
		}
		if state == "ended" || time.Now().After(deadline) {
			break
		}
	}
	if state != "ended" || reason != "expired" {
		t.Errorf("session after the restart: %s/%s, want ended/expired", state, reason)
	}

	// Alice's token expired by then too.
	if _, errs, code := g.run(alice, "", "session", "list"); code == 0 || !strings.Contains(errs, "token expired") {
		t.Errorf("session list with a token 9h old: exit %d, %q; want refused as expired", code, strings.TrimSpace(errs))
	}

	// TOTP codes still follow the wall clock, as Bob's authenticator
	// does: he signs in, and his new token works.
	code, _ := g.totpCodes(bobURI)
	if bob, errs, rc := g.loginWith("bob", password, code); rc != 0 {
		t.Errorf("login with a code of the wall clock's time: exit %d: %s", rc, strings.TrimSpace(errs))
	} else {
		g.mustRun(bob, "", "session", "list")
	}

	export := g.mustRun("", "", "audit", "export", "--data", g.data)
	if !strings.Contains(export, `"gateway.clock_behind"`) {
		t.Errorf("no gateway.clock_behind in the audit log")
	}
	if out := g.mustRun("", "", "audit", "verify", "--data", g.data); !strings.Contains(out, "intact") {
		t.Errorf("audit verify: %q", out)
	}
}

// TestSteadyClockRecordAhead: the newest stored record is decades ahead of
// the wall clock, as when the clock once read 2099 while the gateway ran.
// serve cannot tell that from a wall clock set back, so the gateway's time
// runs on from the record; and what serve logs tells the operator both
// cases, since "fix the clock" alone misleads one whose clock is right.
func TestSteadyClockRecordAhead(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), dbFile), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	ahead := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	log, err := audit.New(audit.Config{Store: st, Signer: key, Now: func() time.Time { return ahead }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := log.Append(context.Background(), audit.Event{Type: "admin.note", Actor: "system", Role: "system"}); err != nil {
		t.Fatal(err)
	}
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}

	var out strings.Builder
	clock, ev, err := steadyClock(st, slog.New(slog.NewTextHandler(&out, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if now := clock.Now(); now.Before(ahead) {
		t.Errorf("the gateway's time %v, want from the record's %v on", now, ahead)
	}
	if ev == nil || ev.Type != "gateway.clock_behind" {
		t.Errorf("audit event: %+v, want gateway.clock_behind", ev)
	}
	for _, want := range []string{"If the wall clock is wrong, fix it", "If it is right, that record was written while the clock ran ahead"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("serve's log does not say %q:\n%s", want, out.String())
		}
	}
}

// TestAdminUserAddClockBehind: `admin user add` writes to the database of
// a gateway whose time runs ahead of the wall clock (its newest record
// is 30 hours ahead: the clock was set back). The enrollment token it
// makes must last its 24 hours on the gateway's time, not be dead on
// arrival, and its audit record must not go back in time.
func TestAdminUserAddClockBehind(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	ahead := time.Now().Add(30 * time.Hour)
	noteAt(t, dir, ahead)

	var out, errb strings.Builder
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	if code := runCLI(env, []string{"admin", "user", "add", "--data", dir, "--name", "carol", "--role", "agent"}); code != 0 {
		t.Fatalf("admin user add: exit %d: %s", code, errb.String())
	}

	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, dbFile)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var expires, created int64
	if err := db.QueryRow(`SELECT expires_at FROM tokens WHERE user = 'carol' AND kind = 'enroll'`).Scan(&expires); err != nil {
		t.Fatal(err)
	}
	if got, want := time.Unix(0, expires), ahead.Add(gateway.EnrollTTL); got.Before(want) {
		t.Errorf("carol's enrollment token expires at %v, want at least 24 h after the gateway's time, %v", got, want)
	}
	if err := db.QueryRow(`SELECT time FROM audit_records WHERE type = 'user.created'`).Scan(&created); err != nil {
		t.Fatal(err)
	}
	if got := time.Unix(0, created); got.Before(ahead) {
		t.Errorf("user.created audited at %v, before the record before it, at %v", got, ahead)
	}
}

// TestE2EClockReset: a record dated 2099 (the host's clock once ran
// ahead) holds the gateway's time there; `admin clock reset` accepts the
// wall clock again. It refuses beside a running serve and while sessions
// set by that clock are open; once it ran, serve starts without the
// error, the old logins are gone, and new sessions end by the wall clock.
func TestE2EClockReset(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	g, bobURI, far := gwAhead(t)
	if !strings.Contains(g.stderr.String(), "wall clock is behind the newest stored record") ||
		!strings.Contains(g.stderr.String(), "admin clock reset") {
		t.Fatalf("serve on a 2099 record said:\n%s", g.stderr.String())
	}
	now, next := g.totpCodes(bobURI)
	bob, errs, code := g.loginWith("bob", password, now)
	if code != 0 {
		t.Fatalf("login in 2099: exit %d %s", code, errs)
	}
	s := g.newSession(bob, "view", "30m")
	if !s.ConsentExpiresAt.After(far) {
		t.Fatalf("a consent link made in 2099 expires at %v", s.ConsentExpiresAt)
	}
	if _, errs, code := g.run("", "", "admin", "clock", "reset", "--data", g.data); code == 0 || !strings.Contains(errs, "another supportgate serve") {
		t.Fatalf("clock reset beside serve: exit %d %q, want refused", code, errs)
	}
	g.kill()
	if _, errs, code := g.run("", "", "admin", "clock", "reset", "--data", g.data); code == 0 || !strings.Contains(errs, "1 session is still open") {
		t.Fatalf("clock reset with a session open: exit %d %q, want refused", code, errs)
	}
	g.start()
	g.mustRun(bob, "", "session", "revoke", s.ID)
	g.kill()
	out := g.mustRun("", "", "admin", "clock", "reset", "--data", g.data)
	// Bob and the first admin, who has not enrolled yet.
	if !strings.Contains(out, "accepted the wall clock") || !strings.Contains(out, "signed out 2 users") {
		t.Fatalf("clock reset said %q", out)
	}

	g.start()
	if strings.Contains(g.stderr.String(), "wall clock is behind") {
		t.Errorf("serve after the reset still says its clock is behind:\n%s", g.stderr.String())
	}
	if _, errs, code := g.run(bob, "", "session", "list"); code == 0 {
		t.Errorf("bob's login from 2099 still works after the reset: %q", errs)
	}
	bob, errs, code = g.loginWith("bob", password, next)
	if code != 0 {
		t.Fatalf("login after the reset: exit %d %s", code, errs)
	}
	s = g.newSession(bob, "view", "30m")
	if d := time.Until(s.ConsentExpiresAt); d <= 0 || d > time.Hour {
		t.Errorf("a consent link made after the reset expires in %v, want within the hour (by the wall clock)", d)
	}
	export := g.mustRun("", "", "audit", "export", "--data", g.data)
	if !strings.Contains(export, `"gateway.clock_reset"`) {
		t.Error("no gateway.clock_reset in the audit log")
	}
	if out := g.mustRun("", "", "audit", "verify", "--data", g.data); !strings.Contains(out, "intact") {
		t.Errorf("audit verify: %q", out)
	}
	// Run again, there is nothing to reset.
	g.kill()
	if out := g.mustRun("", "", "admin", "clock", "reset", "--data", g.data); !strings.Contains(out, "nothing to reset") {
		t.Errorf("a second reset said %q", out)
	}
}

// TestE2EClockResetEndSessions: `admin clock reset --end-sessions` ends
// the sessions still open, an active and a requested one, as revoked by
// local-admin at the reset's time, each with the session.ended record an
// online revoke writes, and resets the clock; the audit chain verifies,
// and serve starts after with both still ended. Without the flag the
// command refuses as before.
func TestE2EClockResetEndSessions(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	g := newGW(t, `{"min_duration": "1s"}`)
	alice := g.user("alice", "agent")
	active := g.newSession(alice, "view", "30m")
	g.browser(active.ConsentURL).approve(`["view"]`)
	requested := g.newSession(alice, "view", "30m")
	g.kill()
	far := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	noteAt(t, g.data, far)

	_, errs, code := g.run("", "", "admin", "clock", "reset", "--data", g.data)
	if want := "supportgate: 2 sessions are still open, with deadlines set by the clock that ran ahead: start serve, end them (supportgate session revoke ID, or admin user lock), stop serve and run this again; or add --end-sessions to end them here as revoked"; code != 1 || strings.TrimSpace(errs) != want {
		t.Fatalf("clock reset with sessions open, without --end-sessions: exit %d %q, want 1 %q", code, errs, want)
	}
	before := time.Now()
	out := g.mustRun("", "", "admin", "clock", "reset", "--data", g.data, "--end-sessions")
	after := time.Now()
	for _, want := range []string{
		"ended session " + active.ID + ` (active, agent alice, customer "Bob at ACME"): revoked`,
		"ended session " + requested.ID + ` (requested, agent alice, customer "Bob at ACME"): revoked`,
		"accepted the wall clock",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("clock reset --end-sessions said %q, want a line %q", out, want)
		}
	}

	db, err := sql.Open("sqlite", "file:"+filepath.Join(g.data, dbFile)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checkEnded := func(when string) {
		t.Helper()
		for _, id := range []string{active.ID, requested.ID} {
			var state, reason, by string
			var endedAt int64
			if err := db.QueryRow(`SELECT state, end_reason, ended_by, ended_at FROM sessions WHERE id = ?`, id).Scan(&state, &reason, &by, &endedAt); err != nil {
				t.Fatal(err)
			}
			at := time.Unix(0, endedAt)
			if state != "ended" || reason != "revoked" || by != "local-admin" || at.Before(before.Add(-time.Second)) || at.After(after) {
				t.Errorf("session %s %s: %s/%s by %q at %v, want ended/revoked by local-admin at the reset's time (%v to %v)",
					id, when, state, reason, by, at, before, after)
			}
		}
	}
	checkEnded("after the reset")
	var endedRecords int
	if err := db.QueryRow(`SELECT COUNT(*) FROM audit_records WHERE type = 'session.ended' AND actor = 'local-admin'
		AND seq < (SELECT MAX(seq) FROM audit_records WHERE type = 'gateway.clock_reset')`).Scan(&endedRecords); err != nil {
		t.Fatal(err)
	}
	if endedRecords != 2 {
		t.Errorf("session.ended records by local-admin before the reset record: %d, want 2", endedRecords)
	}
	if out := g.mustRun("", "", "audit", "verify", "--data", g.data); !strings.Contains(out, "intact") {
		t.Errorf("audit verify after the reset: %q", out)
	}

	g.start()
	if strings.Contains(g.stderr.String(), "wall clock is behind") {
		t.Errorf("serve after the reset still says its clock is behind:\n%s", g.stderr.String())
	}
	g.kill()
	checkEnded("after serve ran again")
	if out := g.mustRun("", "", "audit", "verify", "--data", g.data); !strings.Contains(out, "intact") {
		t.Errorf("audit verify after serve ran again: %q", out)
	}
}

// noteAt appends an audit record dated at to the stopped gateway's data
// directory: what a host whose clock once read that time leaves behind.
func noteAt(t *testing.T, data string, at time.Time) {
	t.Helper()
	st, mat, err := openData(data, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	log, err := audit.New(audit.Config{Store: st, Signer: mat.SigningKey, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := log.Append(context.Background(), audit.Event{Type: "admin.note", Actor: "system", Role: "system"}); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(log.Close(), st.Close()); err != nil {
		t.Fatal(err)
	}
}

// gwAhead starts a gateway with the agent bob (whose otpauth:// URI it
// returns) after a record dated 2099, far, was stored: the host's clock
// once ran ahead, and the gateway's time is held there.
func gwAhead(t *testing.T) (g *gw, bobURI string, far time.Time) {
	t.Helper()
	g = newGW(t, `{"min_duration": "1s"}`)
	bobURI = g.account("bob", "agent", "")
	g.kill()
	far = time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	noteAt(t, g.data, far)
	g.start()
	return g, bobURI, far
}

// TestE2EClockResetLockout: bob mistypes his password five times while a
// record from 2099 holds the gateway's time there, which locks him out
// until a quarter of an hour past that time. `admin clock reset` takes the
// lock back with the clock: it ends a quarter of an hour after the reset
// at most, not in 2099, when no one could sign in as bob again.
func TestE2EClockResetLockout(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	g, bobURI, far := gwAhead(t)
	code, _ := g.totpCodes(bobURI)
	for i := 0; i < 5; i++ {
		if _, errs, rc := g.loginWith("bob", "not "+password, code); rc == 0 {
			t.Fatalf("login with a wrong password: exit 0 %s", errs)
		}
	}
	if _, errs, rc := g.loginWith("bob", password, code); rc == 0 {
		t.Fatalf("bob signed in after five failures: %s", errs)
	}
	g.kill()

	lockedUntil := func() time.Time {
		t.Helper()
		db, err := sql.Open("sqlite", "file:"+filepath.Join(g.data, dbFile)+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int64
		if err := db.QueryRow(`SELECT locked_until FROM users WHERE name = 'bob'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return time.Unix(0, n)
	}
	if until := lockedUntil(); until.Before(far) {
		t.Fatalf("bob locked until %v, want after %v: the lock was set by the clock at 2099", until, far)
	}
	before := time.Now()
	out := g.mustRun("", "", "admin", "clock", "reset", "--data", g.data)
	after := time.Now()
	if until := lockedUntil(); until.After(after.Add(identity.DefaultLockout.LockFor)) {
		t.Errorf("after the clock reset bob is locked until %v, %v from now; want at most %v",
			until, time.Until(until).Round(time.Minute), identity.DefaultLockout.LockFor)
	} else if until.Before(before) {
		t.Errorf("the clock reset lifted bob's lock (until %v), want it moved, not lifted", until)
	}
	if want := "moved the failed-login lockouts of 1 user"; !strings.Contains(out, want) {
		t.Errorf("clock reset said %q, want %q", out, want)
	}
}
