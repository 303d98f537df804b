package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"supportgate/gateway"
	"supportgate/gateway/audit"
	"supportgate/gateway/identity"
	"supportgate/gateway/keys"
	"supportgate/gateway/sqlite"
)

func init() {
	register(&command{name: "admin", summary: "administer the data directory (admin user add)", run: runAdmin})
}

func runAdmin(env *cliEnv, args []string) error {
	if len(args) >= 2 && args[0] == "user" && args[1] == "add" {
		return runAdminUserAdd(env, args[2:])
	}
	if len(args) >= 2 && args[0] == "user" && (args[1] == "lock" || args[1] == "unlock") {
		return runAdminUserLock(env, args[1], args[2:])
	}
	if len(args) >= 2 && args[0] == "user" && args[1] == "reenroll" {
		return runAdminUserReenroll(env, args[2:])
	}
	if len(args) >= 2 && args[0] == "clock" && args[1] == "reset" {
		return runAdminClockReset(env, args[2:])
	}
	if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
		fmt.Fprintln(env.stdout, "usage: supportgate admin user add --data DIR --name NAME --role ROLE --password-stdin --totp-secret-file FILE\n"+
			"       supportgate admin user lock|unlock|reenroll NAME   (as a logged-in admin)\n"+
			"       supportgate admin user reenroll --data DIR --name NAME [--password-stdin --totp-secret-file FILE]   (serve stopped)\n"+
			"       supportgate admin clock reset --data DIR [--end-sessions]   (serve stopped: accept the wall clock over records dated ahead of it)")
		return errHelpShown
	}
	return &exitError{code: 2, msg: "usage: supportgate admin user add --data DIR --name NAME --role agent|supervisor|auditor|admin --password-stdin --totp-secret-file FILE"}
}

// openData opens the store and key material of a data directory that
// `serve` initialised, or initialises it the same way (users may be added
// before the first serve). A new one is said on w: a mistyped --data would
// otherwise add the user to a gateway that does not exist, in silence.
func openData(dir string, w io.Writer) (*sqlite.Store, *keys.Material, error) {
	mat, created, err := keys.LoadOrCreate(dir, keys.Options{})
	if err != nil {
		return nil, nil, err
	}
	if created {
		fmt.Fprintf(w, "supportgate: %s held no gateway's data: initialised a new data directory there (if you meant an existing gateway's, check --data)\n", dir)
	}
	st, err := sqlite.Open(filepath.Join(dir, dbFile), sqlite.Options{})
	if err != nil {
		return nil, nil, err
	}
	return st, mat, nil
}

// storeNow is the clock the offline admin commands write by: serve's
// (steadyClock), never earlier than the newest stored record. On the bare
// wall clock, set back behind the gateway's time, the enrollment tokens
// they make would be short of their lifetime on the gateway's clock, or
// dead, and their audit records would go back in time.
func storeNow(st *sqlite.Store) (func() time.Time, error) {
	clock, _, err := steadyClock(st, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	return func() time.Time { return clock.Now().UTC() }, nil
}

func runAdminUserAdd(env *cliEnv, args []string) error {
	fs := newFlags(env, "admin user add", "--data DIR --name NAME --role ROLE [--display-name NAME] [--team TEAM] [--password-stdin] [--totp-secret-file FILE]")
	dataDir := fs.String("data", "./data", "data `directory`")
	name := fs.String("name", "", "login `name`")
	display := fs.String("display-name", "", "verified name shown to customers (default: the login name)")
	roleName := fs.String("role", "", "agent, supervisor, auditor or admin")
	team := fs.String("team", "", "team, for supervisors")
	pwStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input")
	totpFile := fs.String("totp-secret-file", "", "`file` that receives the otpauth:// URI of the TOTP secret")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	role, err := identity.ParseRole(*roleName)
	if err != nil {
		return &exitError{code: 2, msg: "--role must be agent, supervisor, auditor or admin"}
	}
	if *name == "" {
		return &exitError{code: 2, msg: "--name is required"}
	}
	if *pwStdin && *totpFile == "" {
		return &exitError{code: 2, msg: "--password-stdin needs --totp-secret-file to receive the TOTP secret"}
	}
	var password string
	if *pwStdin {
		if password, err = readSecretLine(env.stdin); err != nil {
			return err
		}
	}
	st, mat, err := openData(*dataDir, env.stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	acc, err := offlineAccounts(st)
	if err != nil {
		return err
	}
	ctx := context.Background()
	a, err := acc.Create(ctx, gateway.NewUser{Name: *name, DisplayName: *display, Role: role, Team: *team, Password: password})
	if err != nil {
		return fmt.Errorf("adding user %s: %w", *name, err)
	}
	if *totpFile != "" {
		if err := os.WriteFile(*totpFile, []byte(a.TOTPURI+"\n"), 0o600); err != nil {
			return err
		}
	}
	log, err := audit.New(audit.Config{Store: st, Signer: mat.SigningKey, Now: acc.Now})
	if err != nil {
		return err
	}
	_, aerr := log.Append(ctx, audit.Event{Type: "user.created", Actor: "local-admin", Role: "admin", Remote: "local",
		Detail: map[string]string{"user": *name, "user_role": string(role), "team": *team, "via": "cli"}})
	if err := errors.Join(aerr, log.Close()); err != nil {
		return fmt.Errorf("user %s added, but auditing it failed: %w", *name, err)
	}
	if a.EnrollToken != "" {
		// As reenroll says it: a bare token does not tell the admin what
		// to hand the user.
		fmt.Fprintf(env.stdout, "added %s (%s); enrollment token (valid %v): %s (the link is PUBLIC_URL/enroll/TOKEN)\n",
			*name, role, gateway.EnrollTTL, a.EnrollToken)
		return nil
	}
	fmt.Fprintf(env.stdout, "added %s (%s)\n", *name, role)
	return nil
}

// readSecretLine reads one line (a password) from r, without the newline.
func readSecretLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading password: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("empty password on standard input")
	}
	return line, nil
}

// runAdminUserLock locks or unlocks an account through the running
// gateway, so that the lock also ends the user's live sessions.
func runAdminUserLock(env *cliEnv, verb string, args []string) error {
	fs := newFlags(env, "admin user "+verb, "NAME")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &exitError{code: 2, msg: "usage: supportgate admin user " + verb + " NAME"}
	}
	cl, err := loggedIn(env)
	if err != nil {
		return err
	}
	var out struct {
		Ended int `json:"sessions_ended"`
	}
	name := fs.Arg(0)
	if err := cl.Do(context.Background(), "POST", "/api/v1/users/"+url.PathEscape(name)+"/"+verb, nil, &out); err != nil {
		return fmt.Errorf("%s %s: %w", verb, name, err)
	}
	if verb == "lock" {
		fmt.Fprintf(env.stdout, "locked %s; ended %d open sessions\n", name, out.Ended)
	} else {
		fmt.Fprintf(env.stdout, "unlocked %s\n", name)
	}
	return nil
}

// runAdminUserReenroll resets a user's sign-in (a lost phone, a forgotten
// password, an expired enrollment link). As a logged-in admin it goes
// through the running gateway, which also ends what the user holds open
// and prints the new enrollment link. With --data it works on the data
// directory itself, for the admin who cannot sign in any more (the only
// admin, who lost their phone): serve must be stopped, since a running one
// would keep what the user holds open; with --password-stdin and
// --totp-secret-file the account is enrolled again at once, otherwise an
// enrollment token is printed.
func runAdminUserReenroll(env *cliEnv, args []string) error {
	fs := newFlags(env, "admin user reenroll", "NAME | --data DIR --name NAME [--password-stdin --totp-secret-file FILE]")
	dataDir := fs.String("data", "", "data `directory` of a stopped gateway (otherwise: through the running gateway, as a logged-in admin)")
	name := fs.String("name", "", "login `name` (with --data)")
	pwStdin := fs.Bool("password-stdin", false, "with --data: read the new password from the first line of standard input")
	totpFile := fs.String("totp-secret-file", "", "with --data: `file` that receives the otpauth:// URI of the new TOTP secret")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dataDir == "" {
		if fs.NArg() != 1 || *name != "" || *pwStdin || *totpFile != "" {
			return &exitError{code: 2, msg: "usage: supportgate admin user reenroll NAME (as a logged-in admin), or --data DIR --name NAME with serve stopped"}
		}
		return reenrollOnline(env, fs.Arg(0))
	}
	if fs.NArg() != 0 || *name == "" {
		return &exitError{code: 2, msg: "usage: supportgate admin user reenroll --data DIR --name NAME [--password-stdin --totp-secret-file FILE]"}
	}
	if *pwStdin != (*totpFile != "") {
		return &exitError{code: 2, msg: "--password-stdin and --totp-secret-file go together: the new secret must go somewhere"}
	}
	var password string
	if *pwStdin {
		var err error
		if password, err = readSecretLine(env.stdin); err != nil {
			return err
		}
	}
	return reenrollOffline(env, *dataDir, *name, password, *totpFile)
}

func reenrollOnline(env *cliEnv, name string) error {
	cl, err := loggedIn(env)
	if err != nil {
		return err
	}
	var out struct {
		EnrollURL string `json:"enroll_url"`
		Ended     int    `json:"sessions_ended"`
	}
	if err := cl.Do(context.Background(), "POST", "/api/v1/users/"+url.PathEscape(name)+"/reenroll", nil, &out); err != nil {
		return fmt.Errorf("reenroll %s: %w", name, err)
	}
	fmt.Fprintf(env.stdout, "reset the sign-in of %s; ended %d open sessions\none-time enrollment link (valid %v), for %s alone: %s\n",
		name, out.Ended, gateway.EnrollTTL, name, out.EnrollURL)
	return nil
}

func reenrollOffline(env *cliEnv, dir, name, password, totpFile string) error {
	st, mat, unlock, err := openStoppedData(dir, "or, while it runs, reset through it: supportgate admin user reenroll NAME")
	if err != nil {
		return err
	}
	defer unlock()
	acc, err := offlineAccounts(st)
	if err != nil {
		return err
	}
	ctx := context.Background()
	a, err := acc.Reset(ctx, name, password)
	if err != nil {
		return fmt.Errorf("resetting %s: %w", name, err)
	}
	if totpFile != "" {
		if err := os.WriteFile(totpFile, []byte(a.TOTPURI+"\n"), 0o600); err != nil {
			return err
		}
	}
	log, err := audit.New(audit.Config{Store: st, Signer: mat.SigningKey, Now: acc.Now})
	if err != nil {
		return err
	}
	_, aerr := log.Append(ctx, audit.Event{Type: "user.reenroll", Actor: "local-admin", Role: "admin", Remote: "local",
		Detail: map[string]string{"user": name, "via": "cli"}})
	if err := errors.Join(aerr, log.Close()); err != nil {
		return fmt.Errorf("sign-in of %s reset, but auditing it failed: %w", name, err)
	}
	switch {
	case a.EnrollToken != "" && name == "admin":
		// bootstrapAdmin renews the first admin's link at each start.
		fmt.Fprintf(env.stdout, "reset the sign-in of admin; start serve: it prints admin's new one-time enrollment link\n")
		return nil
	case a.EnrollToken != "":
		fmt.Fprintf(env.stdout, "reset the sign-in of %s; enrollment token (valid %v): %s (the link is PUBLIC_URL/enroll/TOKEN)\n", name, gateway.EnrollTTL, a.EnrollToken)
		return nil
	}
	fmt.Fprintf(env.stdout, "reset the sign-in of %s: new password set, new TOTP secret in %s\n", name, totpFile)
	return nil
}

// offlineAccounts is the Accounts the offline admin commands create and
// reset users with, on serve's clock (storeNow).
func offlineAccounts(st *sqlite.Store) (*gateway.Accounts, error) {
	hasher, err := identity.NewHasher(nil, identity.DefaultPasswordParams, 1)
	if err != nil {
		return nil, err
	}
	now, err := storeNow(st)
	if err != nil {
		return nil, err
	}
	return &gateway.Accounts{Store: st, Hasher: hasher, Issuer: "supportgate", Now: now}, nil
}

// openStoppedData opens the store and keys of an existing data directory
// whose serve is stopped, holding serve's lock (lockDataDir) until the
// returned function runs, which also closes the store. hint follows the
// error when serve runs.
func openStoppedData(dir, hint string) (*sqlite.Store, *keys.Material, func(), error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, nil, nil, fmt.Errorf("data directory %s does not exist: is --data right?", dir)
	}
	db := filepath.Join(dir, dbFile)
	if _, err := os.Stat(db); err != nil {
		return nil, nil, nil, fmt.Errorf("%s does not exist: is --data right?", db)
	}
	lock, err := lockDataDir(dir)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w (%s)", err, hint)
	}
	st, mat, err := openData(dir, io.Discard)
	if err != nil {
		lock.Close()
		return nil, nil, nil, err
	}
	return st, mat, func() { st.Close(); lock.Close() }, nil
}
