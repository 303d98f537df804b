package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"supportgate/gateway/audit"
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
	fs := newFlags(env, "audit "+sub, "--data DIR")
	dataDir := fs.String("data", "./data", "data `directory`")
	out := fs.String("o", "", "write the export to `file` instead of standard output")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	st, mat, err := openData(*dataDir)
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
	rep, err := audit.Verify(ctx, st, mat.SigningPublic)
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
