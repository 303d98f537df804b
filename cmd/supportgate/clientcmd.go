package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"supportgate/agent"
	"supportgate/gateway"
	"supportgate/session"
)

func init() {
	register(&command{name: "login", summary: "log in to a gateway (password + TOTP)", run: runLogin})
	register(&command{name: "session", summary: "ask for and manage sessions (new|list|show|revoke|extend)", run: runSession})
}

func home(env *cliEnv) (agent.Home, error) { return agent.DefaultHome(env.getenv) }

func runLogin(env *cliEnv, args []string) error {
	fs := newFlags(env, "login", "--gateway URL --ca CA.pem --user NAME [--password-stdin --totp CODE]")
	gw := fs.String("gateway", "", "gateway `URL`, as https://host:8443")
	caFile := fs.String("ca", "", "the gateway's CA certificate (DATA/ca.pem)")
	user := fs.String("user", "", "login `name`")
	pwStdin := fs.Bool("password-stdin", false, "read the password from standard input (else it is asked for on the terminal)")
	totp := fs.String("totp", "", "current TOTP `code` (else it is asked for on the terminal)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	h, err := home(env)
	if err != nil {
		return err
	}
	prev, _ := h.Load()
	if *gw == "" && prev != nil {
		*gw = prev.Gateway
	}
	if *caFile == "" && prev != nil {
		*caFile = h.Path("ca.pem")
	}
	switch {
	case *gw == "":
		return &exitError{code: 2, msg: "--gateway is required on first login"}
	case *caFile == "":
		return &exitError{code: 2, msg: "--ca is required on first login"}
	case *user == "":
		return &exitError{code: 2, msg: "--user is required"}
	case *pwStdin && *totp == "":
		return &exitError{code: 2, msg: "--totp is required with --password-stdin"}
	}
	var password string
	if *pwStdin {
		if password, err = readSecretLine(env.stdin); err != nil {
			return err
		}
	} else {
		tty := terminal(env.stdin)
		if tty == nil {
			return &exitError{code: 2, msg: "no terminal to ask for the password on: use --password-stdin and --totp CODE"}
		}
		if password, err = promptLine(tty, env.stderr, "password for "+*user+": ", false); err != nil {
			return err
		}
		if password == "" {
			return &exitError{code: 2, msg: "empty password"}
		}
		for *totp == "" {
			if *totp, err = promptLine(tty, env.stderr, "code from the authenticator app: ", true); err != nil {
				return err
			}
		}
	}
	caPEM, err := os.ReadFile(*caFile)
	if err != nil {
		return fmt.Errorf("reading CA: %w", err)
	}
	cl, err := agent.NewClient(*gw, caPEM)
	if err != nil {
		return err
	}
	key, err := h.SSHKey()
	if err != nil {
		return fmt.Errorf("preparing SSH key: %w", err)
	}
	resp, err := cl.Login(context.Background(), agent.LoginRequest{User: *user, Password: password, TOTP: *totp, SSHPublicKey: key})
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	if err := h.SaveLogin(cl.Base.String(), caPEM, resp); err != nil {
		return fmt.Errorf("saving login: %w", err)
	}
	fmt.Fprintf(env.stdout, "logged in as %s (%s) until %s\n", resp.User, resp.Role, resp.ExpiresAt.Local().Format(time.RFC3339))
	return nil
}

func runSession(env *cliEnv, args []string) error {
	if len(args) == 0 {
		return &exitError{code: 2, msg: "usage: supportgate session new|list|show|revoke|extend"}
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "new":
		return sessionNew(env, args)
	case "list":
		return sessionList(env, args)
	case "show", "revoke":
		return sessionOne(env, sub, args)
	case "extend":
		return sessionExtend(env, args)
	case "-h", "--help":
		fmt.Fprintln(env.stdout, "usage: supportgate session new|list|show|revoke|extend [flags]")
		return errHelpShown
	}
	return &exitError{code: 2, msg: fmt.Sprintf("unknown session command %q (new, list, show, revoke, extend)", sub)}
}

func loggedIn(env *cliEnv) (*agent.Client, error) {
	h, err := home(env)
	if err != nil {
		return nil, err
	}
	cl, _, err := h.Client(time.Now())
	return cl, err
}

func sessionNew(env *cliEnv, args []string) error {
	fs := newFlags(env, "session new", "--customer TEXT --scope view,chat,shell,tunnel:80 --duration 30m [--reason TEXT] [--json]")
	customer := fs.String("customer", "", "who the customer is (shown in listings)")
	scope := fs.String("scope", "", "scopes to ask for: view, chat, shell, tunnel:PORT[,PORT], files")
	dur := fs.Duration("duration", 0, "time box, as 30m")
	reason := fs.String("reason", "", "why (ticket number, problem)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *customer == "" || *scope == "" || *dur == 0 {
		return &exitError{code: 2, msg: "--customer, --scope and --duration are required"}
	}
	sc, err := session.ParseScopes(*scope)
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	cl, err := loggedIn(env)
	if err != nil {
		return err
	}
	raw, err := cl.CreateSession(context.Background(), agent.NewSession{Customer: *customer, Scopes: sc.Strings(), Duration: dur.String(), Reason: *reason})
	if err != nil {
		return fmt.Errorf("new session: %w", err)
	}
	if *asJSON {
		return printJSON(env, raw)
	}
	var v struct {
		ID               string     `json:"id"`
		ConsentURL       string     `json:"consent_url"`
		VerificationCode string     `json:"verification_code"`
		ConsentExpiresAt *time.Time `json:"consent_expires_at"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "session %s requested\nsend the customer this link: %s\nverification code to read to them: %s\n", v.ID, v.ConsentURL, v.VerificationCode)
	if v.ConsentExpiresAt != nil {
		fmt.Fprintf(env.stdout, "the link works until %s; the time box starts when the customer approves\n", shownTime(*v.ConsentExpiresAt))
	}
	return nil
}

// shownTime is a time as the CLI shows it to a person: local, to the second.
func shownTime(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05 MST") }

// printSession writes a session as lines for a person to read;
// `session show --json` is the form for scripts.
func printSession(env *cliEnv, raw json.RawMessage, now time.Time) error {
	var v gateway.SessionView
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(env.stdout, 2, 4, 2, ' ', 0)
	line := func(k, f string, a ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(f, a...)) }
	line("session", "%s", v.ID)
	state := string(v.State)
	switch {
	case v.EndReason != "" && v.EndedBy != "":
		state += ": " + v.EndReason + " by " + v.EndedBy
	case v.EndReason != "":
		state += ": " + v.EndReason
	}
	line("state", "%s", state)
	agent := v.Agent
	if v.AgentName != "" && v.AgentName != v.Agent {
		agent += " (" + v.AgentName + ")"
	}
	if v.Team != "" {
		agent += ", team " + v.Team
	}
	line("agent", "%s", agent)
	line("customer", "%s", v.Customer)
	if v.Reason != "" {
		line("reason", "%s", v.Reason)
	}
	scopes := strings.Join(v.Scopes.Strings(), ", ")
	if v.ApprovedAt != nil && !slices.Equal(v.Scopes.Strings(), v.RequestedScopes.Strings()) {
		scopes += " (asked for " + strings.Join(v.RequestedScopes.Strings(), ", ") + ")"
	}
	line("scopes", "%s", scopes)
	line("time box", "%s", v.Duration)
	if v.VerificationCode != "" {
		line("code", "%s", v.VerificationCode)
	}
	if v.ApprovedAt == nil && v.ConsentExpiresAt != nil && v.EndedAt == nil {
		line("link works until", "%s", shownTime(*v.ConsentExpiresAt))
	}
	if v.ApprovedAt != nil {
		line("approved", "%s", shownTime(*v.ApprovedAt))
	}
	switch {
	case v.EndedAt != nil:
		line("ended", "%s", shownTime(*v.EndedAt))
	case v.ExpiresAt != nil:
		line("ends", "%s (%s left)", shownTime(*v.ExpiresAt), max(v.ExpiresAt.Sub(now), 0).Round(time.Second))
	}
	if v.Extension != nil {
		line("extension", "%s more asked, waiting for the customer", v.Extension.By)
	}
	return tw.Flush()
}

func printJSON(env *cliEnv, raw json.RawMessage) error {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	enc := json.NewEncoder(env.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func sessionList(env *cliEnv, args []string) error {
	fs := newFlags(env, "session list", "[--state requested|active|ended] [--json]")
	state := fs.String("state", "", "only sessions in this state")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cl, err := loggedIn(env)
	if err != nil {
		return err
	}
	raw, err := cl.Sessions(context.Background(), *state)
	if err != nil {
		return fmt.Errorf("listing sessions: %w", err)
	}
	if *asJSON {
		return printJSON(env, raw)
	}
	var list struct {
		Sessions []struct {
			ID        string     `json:"id"`
			State     string     `json:"state"`
			EndReason string     `json:"end_reason"`
			Agent     string     `json:"agent"`
			Customer  string     `json:"customer"`
			Scopes    []string   `json:"scopes"`
			ExpiresAt *time.Time `json:"expires_at"`
			EndedAt   *time.Time `json:"ended_at"`
		} `json:"sessions"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(env.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tAGENT\tCUSTOMER\tSCOPES\tENDS")
	for _, s := range list.Sessions {
		// When an ended session ended, not when its time box would have.
		ends := ""
		if s.EndedAt != nil {
			ends = s.EndedAt.Local().Format("15:04:05")
		} else if s.ExpiresAt != nil {
			ends = s.ExpiresAt.Local().Format("15:04:05")
		}
		st := s.State
		if s.EndReason != "" {
			st += "/" + s.EndReason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, st, s.Agent, s.Customer, strings.Join(s.Scopes, ","), ends)
	}
	return tw.Flush()
}

func sessionOne(env *cliEnv, sub string, args []string) error {
	fs := newFlags(env, "session "+sub, "ID [--json]")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &exitError{code: 2, msg: "session " + sub + " takes one session ID"}
	}
	id := fs.Arg(0)
	cl, err := loggedIn(env)
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if sub == "show" {
		raw, err = cl.Session(context.Background(), id)
	} else {
		raw, err = cl.Revoke(context.Background(), id)
	}
	if err != nil {
		return fmt.Errorf("session %s: %w", id, err)
	}
	if *asJSON {
		return printJSON(env, raw)
	}
	if sub == "show" {
		return printSession(env, raw, time.Now())
	}
	fmt.Fprintf(env.stdout, "session %s ended\n", id)
	return nil
}

func sessionExtend(env *cliEnv, args []string) error {
	fs := newFlags(env, "session extend", "ID --by 15m [--json]")
	by := fs.Duration("by", 0, "extra time to ask the customer for")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *by <= 0 {
		return &exitError{code: 2, msg: "usage: supportgate session extend ID --by 15m"}
	}
	cl, err := loggedIn(env)
	if err != nil {
		return err
	}
	raw, err := cl.Extend(context.Background(), fs.Arg(0), *by)
	if err != nil {
		return fmt.Errorf("session %s: %w", fs.Arg(0), err)
	}
	if *asJSON {
		return printJSON(env, raw)
	}
	fmt.Fprintf(env.stdout, "asked the customer for %v more; the current time box runs on until they approve\n", *by)
	return nil
}
