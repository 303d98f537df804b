// Command supportgate-assist is the customer-side helper: it shows who asks
// for access to this machine and what for, asks the customer, and for the
// approved time box runs a WireGuard tunnel to the gateway with an SSH
// endpoint (the customer's own shell, as the customer) and the consented
// port forwards inside it. Ctrl-C, or closing the terminal, revokes the
// session.
//
//	supportgate-assist [--ca CA.pem] [--yes] LINK
package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/ssh"

	"supportgate/assist"
)

func main() {
	// Ctrl-C, SIGTERM or the customer closing the terminal window (SIGHUP)
	// cancels the context: the helper revokes the session, ends what its
	// shells started and exits. SIGHUP's default action would end the
	// helper at once, leaving the session open and the shells' background
	// jobs running as the customer. A helper started with SIGHUP ignored
	// (nohup) keeps it ignored: whoever started it so asked for that.
	ctx, cancel := context.WithCancel(context.Background())
	stopOnSignal(cancel)
	// A stdout that can no longer be written (a pager quit, the pipe to
	// tee broken) stops the helper too: the customer no longer sees who
	// is connected, nor how to stop it.
	ctx, gone := context.WithCancel(ctx)
	out := &watchedOutput{w: os.Stdout, gone: gone}
	release := keepRunning(out)
	code := run(ctx, os.Args[1:], os.Stdin, out, os.Stderr)
	release()
	os.Exit(code)
}

// stopOnSignal calls cancel at the first of stopSignals. A second Ctrl-C
// then kills the helper at once (its default action is back), for a
// customer who will not wait; a second hang-up or SIGTERM stays caught:
// a terminal window closing under a shell sends the helper two (the
// shell's and the kernel's), and the second must not cut short the revoke
// and the sweep the first began.
func stopOnSignal(cancel func()) {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, stopSignals()...)
	go func() {
		<-sigs
		cancel()
		signal.Reset(os.Interrupt)
		for range sigs {
		}
	}()
}

// watchedOutput is the helper's stdout: once a write fails because nobody
// reads it any more (EPIPE, or EIO from a terminal that hung up), it calls
// gone.
type watchedOutput struct {
	w    io.Writer
	gone func()
}

func (o *watchedOutput) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.EIO) {
		o.gone()
	}
	return n, err
}

// stopSignals are the signals that stop the helper the way Ctrl-C does.
func stopSignals() []os.Signal {
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	return sigs
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("supportgate-assist", flag.ContinueOnError)
	fs.SetOutput(stderr)
	caFile := fs.String("ca", "", "PEM `file` of the CA that signed the gateway's certificate (default: system roots)")
	yes := fs.Bool("yes", false, "approve without asking (for scripted use; off by default); never for a session already approved on the web page (a handoff link), where the customer is always asked")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: supportgate-assist [--ca CA.pem] [--yes] LINK")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	if _, handoff := assist.LinkParams(fs.Arg(0)); *yes && handoff != "" {
		// A handoff joins a session approved on the web page by whoever
		// opened the link there, which may not be the customer: a
		// dishonest agent could hand over the command with --yes added.
		// The customer answers here, always.
		fmt.Fprintln(stdout, "supportgate-assist: --yes does not apply to a session approved on the web page; you are asked below.")
		*yes = false
	}
	if !*yes && !isTerminal(stdin) {
		// Checked before the link is opened, so that it stays free for the
		// customer's browser (and a handoff code stays unspent).
		fmt.Fprintln(stderr, "supportgate-assist: stdin is not a terminal, so the customer cannot be asked to approve: run the command yourself, in a terminal")
		return 1
	}
	msg, err := assistSession(ctx, fs.Arg(0), *caFile, *yes, stdin, stdout)
	if err != nil {
		// Errors carry the gateway's words (its error answers).
		fmt.Fprintf(stderr, "\nsupportgate-assist: %s\n", assist.Printable(err.Error(), maxError))
		return 1
	}
	fmt.Fprintf(stdout, "\nsupportgate-assist: %s\n", assist.Printable(msg, maxError))
	return 0
}

// httpClient trusts the CA in caFile, or else the certificate whose SHA-256
// fingerprint the link carries (https://HOST/c/TOKEN#sha256=HEX: the
// gateway's TLS certificate, or a CA certificate it presents in its chain),
// or else the system roots.
func httpClient(caFile, link string) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if fp, ok := linkFingerprint(link); ok && caFile == "" {
		tc.InsecureSkipVerify = true // replaced by the pin check below, which also checks the name
		host := ""
		if u, err := url.Parse(link); err == nil {
			host = u.Hostname()
		}
		tc.VerifyConnection = func(cs tls.ConnectionState) error { return checkPin(cs, fp, host) }
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
		}
		tc.RootCAs = pool
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}, nil
}

// How much of a gateway-supplied text the helper prints (see untrusted).
const (
	maxField  = 120 // names, codes, scopes, durations, addresses
	maxReason = 400 // the agent's reason
	maxError  = 600 // a whole error or closing message
)

// untrusted is gateway-supplied text as it may be printed: a gateway (or
// an agent, through the reason or a name) must not drive the customer's
// terminal, nor make what it shows read otherwise than it is.
func untrusted(s string) string { return assist.Printable(s, maxField) }

func untrustedList(l []string) string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = untrusted(s)
	}
	return assist.Printable(strings.Join(out, ", "), maxReason)
}

// Clock and grace of the local time box: the helper closes the tunnel
// once the session's end (as the gateway last said it) has passed by
// expiryGrace, even if the gateway said nothing; the grace covers clocks
// that differ a little between the machines. Variables for tests.
var (
	now         = time.Now
	expiryGrace = 5 * time.Second
)

// revokeTimeout bounds the revoke the helper sends on its way out,
// tries again included.
const revokeTimeout = 10 * time.Second

// revoke revokes the session, trying again while the gateway is out of
// reach or answers that it is busy (a restart behind a reverse proxy), for
// at most revokeTimeout.
func revoke(ctx context.Context, cs *assist.Consent) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revokeTimeout)
	defer cancel()
	for {
		err := cs.Revoke(ctx)
		var apiErr *assist.APIError
		if err == nil || errors.As(err, &apiErr) && !apiErr.Transient() {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// stillOpen says what the customer can do about a session the helper could
// not revoke. One approved on the web page (a handoff link) can be stopped
// there; a link the helper opened itself is bound to this helper alone,
// so that the web page refuses it, and only support can end it.
func stillOpen(link string) string {
	if _, handoff := assist.LinkParams(link); handoff != "" {
		return "the session may still be open: press Stop on the web page where you approved it"
	}
	return "the session may still be open: call support and ask them to end it"
}

// boundHint adds to a refusal because the link is bound to another client
// what the customer can do: the gateway's words alone ("consent link is
// already bound to another client") leave them stuck.
func boundHint(err error, link string) error {
	var ae *assist.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusForbidden || !strings.Contains(ae.Message, "bound to another") {
		return err
	}
	if _, handoff := assist.LinkParams(link); handoff != "" {
		return fmt.Errorf("%w: this command's code was used already or has expired; ask for a new one with \"Show the command\" on the web page", err)
	}
	return fmt.Errorf("%w: the link was opened first elsewhere (a web browser, say); if that was you, approve it on that page "+
		"and run the command its \"Show the command\" button gives; if not, call support back on a number you trust", err)
}

// assistSession runs one session from the link to its end and returns why
// it ended. Once the customer said yes, every way out that is not the
// session's own end revokes it (best effort, bounded): a session must not
// stay active with no helper to end it.
func assistSession(ctx context.Context, link, caFile string, yes bool, stdin io.Reader, out io.Writer) (msg string, err error) {
	hc, err := httpClient(caFile, link)
	if err != nil {
		return "", err
	}
	cs, err := assist.Open(ctx, hc, link)
	if err != nil {
		return "", boundHint(err, link)
	}
	v := cs.View()
	if v.State == "ended" {
		return "", fmt.Errorf("this session has ended (%s)", untrusted(v.EndReason))
	}
	shown, ok := confirm(ctx, v, yes, stdin, out)
	if !ok {
		// Tell the gateway, with this client's own key: a session waiting
		// for consent is denied, one approved on the web page (a handoff)
		// is revoked, as the customer's Stop button would.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if v.State == "active" {
			if err := cs.Revoke(dctx); err != nil {
				return "", fmt.Errorf("ending the session you refused: %w (end it on the web page, or call support)", err)
			}
			return "you refused the session and it is ended; this helper did not connect", nil
		}
		if err := cs.Deny(dctx); err != nil {
			return "", err
		}
		return "you denied the session; nothing was shared", nil
	}
	over := false // the session ended, or the helper revoked it
	defer func() {
		if err != nil && !over {
			if rerr := revoke(ctx, cs); rerr != nil {
				err = fmt.Errorf("%w; revoking the session: %v (%s)", err, rerr, stillOpen(link))
			}
		}
	}()
	if v.State != "active" {
		if err := cs.Approve(ctx, shown); err != nil {
			return "", err
		}
	}
	v = cs.View()
	if !hasDeviceScope(v.Scopes) {
		return "", errors.New("the session grants neither shell nor tunnel: nothing for this helper to do (use the web page)")
	}

	var wgPriv [32]byte
	rand.Read(wgPriv[:])
	wgPriv[0] &= 248
	wgPriv[31] = (wgPriv[31] & 127) | 64
	wgPub, err := curve25519.X25519(wgPriv[:], curve25519.Basepoint)
	if err != nil {
		return "", err
	}
	_, hk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	host, err := ssh.NewSignerFromKey(hk)
	if err != nil {
		return "", err
	}
	en, err := cs.Enroll(ctx, encodeKey(wgPub), string(ssh.MarshalAuthorizedKey(host.PublicKey())))
	if err != nil {
		return "", err
	}
	uc, err := dialSocket(en.Endpoint)
	if err != nil {
		return "", err
	}
	defer uc.Close()
	shell := os.Getenv("SHELL")
	if shell == "" {
		shell = "/bin/sh"
	}
	// Only what the customer saw and agreed to is served, whatever the
	// enrollment says.
	ep, err := assist.StartEndpoint(assist.EndpointConfig{
		Enrollment: en, PrivateKey: wgPriv, HostKey: host, Conn: uc, Shell: shell, Consented: shown,
	})
	if err != nil {
		return "", err
	}
	defer ep.Close()
	if _, refused := assist.AllowedScopes(en.Scopes, shown); len(refused) > 0 {
		fmt.Fprintf(out, "The gateway asked for more than you allowed (%s): refused.\n", untrustedList(refused))
	}
	fmt.Fprintf(out, "Connected: tunnel %s to %s; %s may now use %s.\n", untrusted(en.Address), untrusted(en.Endpoint),
		untrusted(v.Agent.Name), untrustedList(ep.Scopes()))

	ended := make(chan assist.View, 1)
	watchErr := make(chan error, 1)
	wctx, cancelWatch := context.WithCancel(context.Background())
	defer cancelWatch()
	joins := make(chan string, 16)
	// exts carries the latest view's extension request to the main loop
	// (the latest replaces one not taken yet).
	exts := make(chan *assist.Extension, 1)
	offer := func(e *assist.Extension) {
		for {
			select {
			case exts <- e:
				return
			default:
				select {
				case <-exts:
				default:
				}
			}
		}
	}
	say := func(msg string) {
		select {
		case joins <- msg:
		default:
		}
	}
	go func() {
		seen := map[assist.Participant]bool{}
		var lost time.Time // when contact with the gateway was lost; zero while in contact
		onView := func(v assist.View) {
			if !lost.IsZero() {
				// Back in contact: the gateway may have restarted and
				// forgotten the tunnel's keys, so handshake again now.
				lost = time.Time{}
				if err := ep.Rejoin(); err != nil {
					say("could not renew the tunnel: " + untrusted(err.Error()))
				}
				say("in contact with the gateway again")
			}
			// Say each join and leave on a line of its own, above the status line.
			now := map[assist.Participant]bool{}
			for _, p := range v.Connected {
				now[p] = true
				if !seen[p] {
					select {
					case joins <- assist.Printable(p.String(), maxReason) + " joined":
					default:
					}
				}
			}
			for p := range seen {
				if !now[p] {
					select {
					case joins <- assist.Printable(p.String(), maxReason) + " left":
					default:
					}
				}
			}
			seen = now
			offer(v.Extension)
		}
		for {
			last, err := cs.Watch(wctx, onView)
			if err == nil {
				ended <- last
				return
			}
			// The gateway refused (the link is gone, say), the customer
			// stopped, or it has been out of reach too long: stop. A
			// gateway restarting is out of reach for a few seconds, or
			// answers 502 or 503 through a reverse proxy; the tunnel stays
			// up meanwhile (nothing but the gateway can use it).
			var apiErr *assist.APIError
			if wctx.Err() != nil || errors.As(err, &apiErr) && !apiErr.Transient() {
				watchErr <- err
				return
			}
			if lost.IsZero() {
				lost = time.Now()
				say(fmt.Sprintf("lost contact with the gateway; trying again for %s", reconnectFor))
			}
			exp := cs.View().ExpiresAt
			if time.Since(lost) > reconnectFor || exp != nil && time.Now().After(*exp) {
				watchErr <- err
				return
			}
			select {
			case <-wctx.Done():
			case <-time.After(reconnectEvery):
			}
		}
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	// expiry is when the session ends as the gateway last said it (the
	// latest view's, or else the enrollment's), on this machine's clock.
	expiry := func() time.Time {
		exp := en.ExpiresAt
		if v := cs.View(); v.ExpiresAt != nil {
			exp = *v.ExpiresAt
		}
		if exp.IsZero() {
			return exp
		}
		return exp.Add(-cs.Skew())
	}
	status := func() {
		st := ep.Status()
		left := "?"
		if exp := expiry(); !exp.IsZero() {
			left = max(exp.Sub(now()), 0).Truncate(time.Second).String()
		}
		who := "nobody connected"
		if st.SSHConnections > 0 || st.Forwards > 0 {
			who = fmt.Sprintf("%s connected: %d ssh, %d shells, %d forwards", untrusted(v.Agent.Name), st.SSHConnections, st.Shells, st.Forwards)
		}
		for _, p := range cs.View().Connected {
			if p.Role == "supervisor" {
				who += "; " + untrusted(p.Name) + " (supervisor) watching"
			}
		}
		line := fmt.Sprintf("%s | time left %s | Ctrl-C ends it", who, left)
		fmt.Fprint(out, "\r\033[K"+fitLine(line, termWidth(out)))
	}
	// revokeAndClose tells the gateway first, with its own timeout, while
	// the endpoint closes: however long killing the shells takes, the
	// session ends at the gateway.
	revokeAndClose := func() error {
		over = true
		revoked := make(chan error, 1)
		go func() { revoked <- revoke(ctx, cs) }()
		ep.Close()
		return <-revoked
	}
	ask := &extensionAsk{cs: cs, out: out, agent: untrusted(v.Agent.Name), tty: isTerminal(stdin) && foreground(stdin)}
	var lines <-chan string
	if ask.tty {
		lines = readLines(wctx, stdin)
	}
	status()
	for {
		select {
		case e := <-exts:
			ask.seen(e)
			if !ask.asking() {
				status()
			}
		case line, ok := <-lines:
			if !ok {
				lines = nil // the terminal is gone
				continue
			}
			if ask.asking() {
				ask.answer(ctx, line)
				status()
			}
		case <-ctx.Done():
			if err := revokeAndClose(); err != nil {
				return "", fmt.Errorf("revoking: %w (%s)", err, stillOpen(link))
			}
			return "you revoked the session; the tunnel is closed", nil
		case last := <-ended:
			over = true
			ep.Close()
			return "session ended: " + endReason(last), nil
		case err := <-watchErr:
			ep.Close()
			return "", fmt.Errorf("lost contact with the gateway, closed the tunnel: %w", err)
		case msg := <-joins:
			fmt.Fprintf(out, "\r\033[K%s %s\n", time.Now().Format("15:04:05"), msg)
			if ask.asking() {
				ask.prompt()
			} else {
				status()
			}
		case <-tick.C:
			if exp := expiry(); !exp.IsZero() && now().After(exp.Add(expiryGrace)) {
				// The gateway should have ended it and did not say so. The
				// revoke is best effort: an honest gateway ended it already.
				revokeAndClose()
				return fmt.Sprintf("the time box ran out at %s; closed the tunnel (no end heard from the gateway)", exp.Local().Format("15:04:05")), nil
			}
			if !ask.asking() {
				status()
			}
		}
	}
}

// confirm shows the customer who asks for access to this machine and for
// what, as the gateway verified it, and asks y/N on the helper's terminal.
// It is the helper's only way to a yes: for a session waiting for consent,
// and as much for one already approved on the web page, since whoever
// opened the link first approved it there, which may not be the customer.
// Only y or yes is a yes; anything else, end of input or Ctrl-C (at once,
// without waiting for Enter) is a no. An empty line asks again: an Enter
// pressed while the helper was connecting is not an answer. With yes (--yes) it says so and does
// not ask. It returns the scopes it showed, which are all the customer
// agreed to. Every text from the gateway goes through untrusted.
func confirm(ctx context.Context, v assist.View, yes bool, stdin io.Reader, out io.Writer) ([]string, bool) {
	shown := v.RequestedScopes
	if v.State == "active" {
		shown = v.Scopes // what was approved, perhaps less than asked
	}
	shown = slices.Clone(shown)
	if shown == nil {
		shown = []string{}
	}
	scopes := untrustedList(shown)
	fmt.Fprintf(out, "%s asks for access to this machine.\n", untrusted(v.Agent.Org))
	fmt.Fprintf(out, "  agent:             %s\n", untrusted(v.Agent.Name))
	fmt.Fprintf(out, "  verification code: %s   (check it with the agent on the phone)\n", untrusted(v.VerificationCode))
	fmt.Fprintf(out, "  allowed:           %s\n", scopes)
	if v.State == "active" && v.ExpiresAt != nil {
		// The time box as it is now: duration is what the agent first
		// asked for, and extensions the customer allowed since lengthen it.
		box := untrusted(v.Duration)
		if v.ApprovedAt != nil && v.ExpiresAt.After(*v.ApprovedAt) {
			box = v.ExpiresAt.Sub(*v.ApprovedAt).String()
		}
		fmt.Fprintf(out, "  for:               %s, until %s (%s left)\n", box,
			v.ExpiresAt.Local().Format("15:04:05"), v.ExpiresAt.Sub(now()).Truncate(time.Second))
	} else {
		fmt.Fprintf(out, "  for:               %s, from when you allow it\n", untrusted(v.Duration))
	}
	if v.Reason != "" {
		fmt.Fprintf(out, "  reason:            %s\n", assist.Printable(v.Reason, maxReason))
	}
	fmt.Fprintln(out, "  Everything is recorded. Press Ctrl-C at any time to end the session.")
	if v.State == "active" {
		at := ""
		if v.ApprovedAt != nil {
			at = " at " + v.ApprovedAt.Local().Format("15:04:05")
		}
		fmt.Fprintf(out, "This session was already approved on the web page%s, by whoever opened the link there.\n", at)
		fmt.Fprintln(out, "If you did not approve it yourself, in your own browser, answer n and call support back on a number you trust.")
	}
	if yes {
		fmt.Fprintln(out, "Allowed without asking (--yes).")
		return shown, ctx.Err() == nil
	}
	fmt.Fprintf(out, "Allow %s to use %s on this machine? [y/N] ", untrusted(v.Agent.Name), scopes)
	// The answer is read aside, so that Ctrl-C is a no at once. If it
	// comes first, the reader stays blocked on the terminal until the
	// helper exits, which it then does.
	// The reader stops at the first line with something on it, or at the
	// end of input, so that later prompts read what follows.
	answer := make(chan string, 1)
	empty := make(chan struct{}, 1)
	go func() {
		r := bufio.NewReader(stdin)
		for {
			line, err := r.ReadString('\n')
			if strings.TrimSpace(line) != "" || err != nil {
				answer <- line
				return
			}
			select {
			case empty <- struct{}{}:
			default:
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(out)
			return shown, false
		case <-empty:
			fmt.Fprint(out, "Please answer y to allow or n to refuse: ")
		case line := <-answer:
			line = strings.TrimSpace(line)
			return shown, (strings.EqualFold(line, "y") || strings.EqualFold(line, "yes")) && ctx.Err() == nil
		}
	}
}

// How long and how often the helper tries to get back in contact with a
// gateway it lost (a restart, a network change) before it closes the tunnel.
const (
	reconnectFor   = 2 * time.Minute
	reconnectEvery = 2 * time.Second
)

func endReason(v assist.View) string {
	switch v.EndReason {
	case "expired":
		return "the time box ran out"
	case "revoked":
		return "it was revoked"
	case "idle":
		return "it was idle too long"
	case "locked":
		return "the agent's account was locked"
	case "completed":
		return "the agent finished"
	case "":
		return "unknown reason"
	}
	return untrusted(v.EndReason)
}

func hasDeviceScope(scopes []string) bool {
	for _, s := range scopes {
		if s == "shell" || strings.HasPrefix(s, "tunnel:") {
			return true
		}
	}
	return false
}

// dialSocket opens the tunnel's UDP socket in the family of the gateway's
// endpoint, on an ephemeral port: the helper only sends out.
func dialSocket(endpoint string) (*net.UDPConn, error) {
	ua, err := net.ResolveUDPAddr("udp", endpoint)
	if err != nil {
		return nil, fmt.Errorf("gateway endpoint %s: %w", endpoint, err)
	}
	network := "udp6"
	if ua.IP.To4() != nil {
		network = "udp4"
	}
	return net.ListenUDP(network, nil)
}

func encodeKey(k []byte) string {
	var a [32]byte
	copy(a[:], k)
	return fmtKey(a)
}

// linkFingerprint reads the #sha256=HEX fragment of a consent link.
func linkFingerprint(link string) ([32]byte, bool) {
	var fp [32]byte
	u, err := url.Parse(link)
	if err != nil {
		return fp, false
	}
	h, _ := assist.LinkParams(u.String())
	if h == "" {
		return fp, false
	}
	b, err := hex.DecodeString(strings.ReplaceAll(h, ":", ""))
	if err != nil || len(b) != 32 {
		return fp, false
	}
	copy(fp[:], b)
	return fp, true
}

// checkPin accepts the connection when the gateway's certificate is the
// pinned one, or when a presented CA certificate is and, taken as the only
// root, verifies the gateway's certificate for host.
func checkPin(cs tls.ConnectionState, fp [32]byte, host string) error {
	certs := cs.PeerCertificates
	if len(certs) == 0 {
		return errors.New("the gateway presented no certificate")
	}
	for _, c := range certs {
		if sha256.Sum256(c.Raw) != fp {
			continue
		}
		roots := x509.NewCertPool()
		roots.AddCert(c)
		inter := x509.NewCertPool()
		for _, ic := range certs[1:] {
			inter.AddCert(ic)
		}
		if c == certs[0] {
			return nil // exactly the certificate the link names
		}
		_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: host})
		return err
	}
	return errors.New("the gateway's certificate does not match the fingerprint in the link")
}
