package main

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"supportgate/agent"
)

func init() {
	register(&command{name: "ssh", summary: "open a shell or forwards in a session through the gateway's SSH bastion (wraps OpenSSH)", run: runSSH})
}

// runSSH runs OpenSSH against the bastion with the stored login: the key,
// its certificate, the gateway's known host key and the bastion's port.
// Everything after SESSION goes to ssh unchanged (options such as -L, then
// an optional command).
func runSSH(env *cliEnv, args []string) error {
	fs := newFlags(env, "ssh", "[--port N] [--ssh PATH] [--print] SESSION [SSH_OPTION...] [COMMAND...]")
	port := fs.Int("port", 0, "bastion `port` (default: from the login, else 2222)")
	sshBin := fs.String("ssh", "ssh", "OpenSSH client `program`")
	printOnly := fs.Bool("print", false, "print the ssh command line instead of running it")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelpShown
		}
		return &exitError{code: 2, msg: err.Error()}
	}
	if fs.NArg() < 1 {
		return &exitError{code: 2, msg: "usage: supportgate ssh SESSION [SSH_OPTION...] [COMMAND...]"}
	}
	id, rest := fs.Arg(0), fs.Args()[1:]
	h, err := home(env)
	if err != nil {
		return err
	}
	argv, err := sshArgv(h, *port, id, rest)
	if err != nil {
		return err
	}
	if *printOnly {
		fmt.Fprintln(env.stdout, strings.Join(append([]string{*sshBin}, argv...), " "))
		return nil
	}
	cmd := exec.Command(*sshBin, argv...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = env.stdin, env.stdout, env.stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return &exitError{code: ee.ExitCode()} // ssh has said why
	}
	if err != nil {
		return fmt.Errorf("running %s: %w", *sshBin, err)
	}
	return nil
}

// sshArgv builds ssh's arguments from the stored login.
func sshArgv(h agent.Home, port int, id string, rest []string) ([]string, error) {
	c, err := h.Load()
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(c.Gateway)
	if err != nil || u.Hostname() == "" {
		return nil, fmt.Errorf("stored gateway %q is not a URL; run supportgate login", c.Gateway)
	}
	for _, f := range []string{"id_ed25519", "id_ed25519-cert.pub", "known_hosts"} {
		if _, err := os.Stat(h.Path(f)); err != nil {
			return nil, fmt.Errorf("no %s in %s; run supportgate login", f, h.Dir)
		}
	}
	if port == 0 {
		port = c.SSHPort
	}
	if port == 0 {
		port = 2222
	}
	if id == "" || strings.ContainsAny(id, "@ \t/") || strings.HasPrefix(id, "-") {
		return nil, &exitError{code: 2, msg: fmt.Sprintf("%q is not a session id", id)}
	}
	argv := []string{
		"-p", strconv.Itoa(port),
		"-i", h.Path("id_ed25519"),
		"-o", "CertificateFile=" + h.Path("id_ed25519-cert.pub"),
		"-o", "IdentitiesOnly=yes",
		"-o", "IdentityAgent=none",
		"-o", "UserKnownHostsFile=" + h.Path("known_hosts"),
		"-o", "StrictHostKeyChecking=yes",
		"-o", "PasswordAuthentication=no",
		"-o", "KbdInteractiveAuthentication=no",
		"-o", "ForwardAgent=no",
		"-o", "ForwardX11=no",
		"-l", id,
	}
	// Options first, then the host, then the command.
	var opts, command []string
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if !strings.HasPrefix(a, "-") || a == "--" {
			if a == "--" {
				i++
			}
			command = rest[i:]
			break
		}
		opts = append(opts, a)
		if len(a) == 2 && strings.ContainsRune("bcDEeFIiJLlmOoPpRSWw", rune(a[1])) && i+1 < len(rest) {
			opts = append(opts, rest[i+1])
			i++
		}
	}
	argv = append(argv, opts...)
	argv = append(argv, u.Hostname())
	return append(argv, command...), nil
}
