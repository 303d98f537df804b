package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"supportgate/gateway/audit"
	"supportgate/gateway/keys"
	"supportgate/gateway/sqlite"
)

func init() {
	register(&command{name: "audit", summary: "verify or export the audit log (audit verify|export --data DIR)", run: runAudit})
}

func runAudit(env *cliEnv, args []string) error {
	if len(args) == 0 || (args[0] != "verify" && args[0] != "export") {
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
			fmt.Fprintln(env.stdout, "usage: supportgate audit verify|export --data DIR [-o FILE]")
			return errHelpShown
		}
		return &exitError{code: 2, msg: "usage: supportgate audit verify|export --data DIR"}
	}
	sub := args[0]
	synopsis := "--data DIR [-o FILE]\n\nreads DIR and changes nothing in it"
	if sub == "verify" {
		synopsis = "--data DIR\n\nreads DIR and changes nothing in it; exit status: 0 intact, 1 tampered (names\n" +
			"the record) or unreadable (no DIR/" + dbFile + ", say), 2 usage error"
	}
	flags := newFlags(env, "audit "+sub, synopsis)
	dataDir := flags.String("data", "./data", "data `directory`")
	// -o only for export: verify writes nothing, so it refuses the flag
	// rather than take it and leave no file where the user looks for one.
	out := new(string)
	if sub == "export" {
		flags.StringVar(out, "o", "", "write the export to `file` instead of standard output")
	}
	if err := parseFlags(flags, args[1:]); err != nil {
		return err
	}
	if flags.NArg() != 0 {
		// "audit verify DIR" would otherwise read ./data, not DIR.
		return &exitError{code: 2, msg: fmt.Sprintf("audit %s: unexpected argument %q: name the data directory with --data", sub, flags.Arg(0))}
	}
	st, err := openAuditStore(*dataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := context.Background()
	if sub == "export" {
		w := env.stdout
		if *out != "" {
			f, err := os.OpenFile(*out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			defer f.Close()
			w = f
		}
		return audit.Export(ctx, st, w)
	}
	pub, err := keys.LoadSigningPublic(*dataDir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s does not exist: audit verify needs the gateway's public signing key", filepath.Join(*dataDir, keys.SigningPubFile))
	}
	if err != nil {
		return err
	}
	rep, err := audit.Verify(ctx, st, pub)
	var te *audit.TamperError
	if errors.As(err, &te) {
		return &exitError{code: 1, msg: te.Error()}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "audit log intact: %d records, %d signed checkpoints, last checkpoint at record %d, %d records after it\n",
		rep.Records, rep.Checkpoints, rep.LastCheckpoint, rep.Unsigned)
	return nil
}

// openAuditStore opens the database of the data directory dir read-only.
// Unlike openData it creates nothing and reads no key, so a mistyped
// --data or a deleted database is an error rather than a fresh, empty log,
// and a read-only copy or a reviewer who cannot read the private keys
// can still verify.
func openAuditStore(dir string) (*sqlite.ReadOnly, error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("data directory %s does not exist: is --data right?", dir)
	}
	path := filepath.Join(dir, dbFile)
	st, err := sqlite.OpenReadOnly(path, sqlite.Options{})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s does not exist: is --data right, or was the database deleted?", path)
	}
	return st, err
}
