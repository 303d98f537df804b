package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
)

// newFlags returns a flag set for a subcommand that prints its help to
// stdout and reports parse errors as a one-line error (exit 2).
func newFlags(env *cliEnv, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("supportgate "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(env.stdout, "usage: supportgate %s %s\n\nflags:\n", name, synopsis)
		fs.SetOutput(env.stdout)
		fs.PrintDefaults()
		fs.SetOutput(discard{})
	}
	fs.SetOutput(discard{})
	return fs
}

// parseFlags parses args, allowing flags after positional arguments
// ("session show ID --json"), and maps -h/--help and errors to what
// runCLI expects.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return errHelpShown // fs.Parse has printed the usage
			}
			msg := err.Error()
			if rest, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
				msg = "unknown flag " + rest
			}
			return &exitError{code: 2, msg: strings.TrimPrefix(fs.Name(), "supportgate ") + ": " + msg}
		}
		if fs.NArg() == 0 {
			break
		}
		args = fs.Args()
		if args[0] == "--" {
			positional = append(positional, args[1:]...)
			break
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
	return fs.Parse(append([]string{"--"}, positional...))
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
