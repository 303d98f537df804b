// Command supportgate is the gateway server and the CLI for agents,
// supervisors, auditors and admins. Each subcommand lives in its own file and
// registers itself in the command table; main only dispatches and turns
// errors into one line on stderr and a non-zero exit.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// command is one subcommand. run receives the arguments after its name and
// returns an error for a one-line report; exitError carries a specific code.
type command struct {
	name    string
	summary string
	run     func(env *cliEnv, args []string) error
}

// cliEnv is what a command may touch of the outside world, so tests can run
// commands in-process with their own streams.
type cliEnv struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

var commands = map[string]*command{}

// register adds a subcommand; called from init in each command's file.
func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("supportgate: duplicate command " + c.name)
	}
	commands[c.name] = c
}

// exitError asks main to exit with a specific code after printing msg.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func main() {
	env := &cliEnv{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	os.Exit(runCLI(env, os.Args[1:]))
}

// runCLI dispatches args to a subcommand and returns the process exit code.
func runCLI(env *cliEnv, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(env.stderr, "supportgate: unknown command %q (see supportgate --help)\n", args[0])
		return 2
	}
	err := c.run(env, args[1:])
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintf(env.stderr, "supportgate: %s\n", oneLine(ee.msg))
		}
		return ee.code
	}
	if errors.Is(err, errHelpShown) {
		return 0
	}
	fmt.Fprintf(env.stderr, "supportgate: %s\n", oneLine(err.Error()))
	return 1
}

// errHelpShown is returned by a command that printed its --help.
var errHelpShown = errors.New("help shown")

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.ReplaceAll(s, "\n", "; ")
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: supportgate COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nrun 'supportgate COMMAND --help' for a command's flags")
}
