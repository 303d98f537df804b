// Command supportgate-assist is the customer-side helper: it shows who asks
// for access to this machine and what for, asks the customer, and for the
// approved time box runs a WireGuard tunnel to the gateway with an SSH
// endpoint (the customer's own shell, as the customer) and the consented
// port forwards inside it. Ctrl-C revokes the session.
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
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/ssh"

	"supportgate/assist"
)

func main() {
	// Ctrl-C (or SIGTERM) cancels the context: the helper revokes the
	// session and exits.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
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
		fmt.Fprintf(stderr, "\nsupportgate-assist: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "\nsupportgate-assist: %s\n", msg)
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

// assistSession runs one session from the link to its end and returns why
// it ended.
func assistSession(ctx context.Context, link, caFile string, yes bool, stdin io.Reader, out io.Writer) (string, error) {
	hc, err := httpClient(caFile, link)
	if err != nil {
		return "", err
	}
	cs, err := assist.Open(ctx, hc, link)
	if err != nil {
		return "", err
	}
	v := cs.View()
	if v.State == "ended" {
		return "", fmt.Errorf("this session has ended (%s)", v.EndReason)
	}
	if !confirm(ctx, v, yes, stdin, out) {
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
	if v.State != "active" {
		if err := cs.Approve(ctx, nil); err != nil {
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
	ep, err := assist.StartEndpoint(assist.EndpointConfig{
		Enrollment: en, PrivateKey: wgPriv, HostKey: host, Conn: uc, Shell: shell,
	})
	if err != nil {
		return "", err
	}
	defer ep.Close()
	fmt.Fprintf(out, "Connected: tunnel %s to %s; %s may now use %s.\n", en.Address, en.Endpoint, v.Agent.Name, strings.Join(en.Scopes, ", "))

	ended := make(chan assist.View, 1)
	watchErr := make(chan error, 1)
	wctx, cancelWatch := context.WithCancel(context.Background())
	defer cancelWatch()
	joins := make(chan string, 16)
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
					say("could not renew the tunnel: " + err.Error())
				}
				say("in contact with the gateway again")
			}
			// Say each join and leave on a line of its own, above the status line.
			now := map[assist.Participant]bool{}
			for _, p := range v.Connected {
				now[p] = true
				if !seen[p] {
					select {
					case joins <- p.String() + " joined":
					default:
					}
				}
			}
			for p := range seen {
				if !now[p] {
					select {
					case joins <- p.String() + " left":
					default:
					}
				}
			}
			seen = now
		}
		for {
			last, err := cs.Watch(wctx, onView)
			if err == nil {
				ended <- last
				return
			}
			// The gateway answered with an error (the link is gone, say), the
			// customer stopped, or it has been out of reach too long: stop.
			// A gateway restarting is out of reach for a few seconds; the
			// tunnel stays up meanwhile (nothing but the gateway can use it).
			var apiErr *assist.APIError
			if wctx.Err() != nil || errors.As(err, &apiErr) {
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
	status := func() {
		st := ep.Status()
		left := "?"
		if v := cs.View(); v.ExpiresAt != nil {
			left = time.Until(*v.ExpiresAt).Truncate(time.Second).String()
		}
		who := "nobody connected"
		if st.SSHConnections > 0 || st.Forwards > 0 {
			who = fmt.Sprintf("%s connected: %d ssh, %d shells, %d forwards", v.Agent.Name, st.SSHConnections, st.Shells, st.Forwards)
		}
		for _, p := range cs.View().Connected {
			if p.Role == "supervisor" {
				who += "; " + p.Name + " (supervisor) watching"
			}
		}
		fmt.Fprintf(out, "\r\033[K%s | time left %s | Ctrl-C ends it", who, left)
	}
	status()
	for {
		select {
		case <-ctx.Done():
			ep.Close() // shells first, then tell the gateway
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := cs.Revoke(rctx); err != nil {
				return "", fmt.Errorf("revoking: %w (the session may still be open: revoke it on the web page)", err)
			}
			return "you revoked the session; the tunnel is closed", nil
		case last := <-ended:
			ep.Close()
			return "session ended: " + endReason(last), nil
		case err := <-watchErr:
			ep.Close()
			return "", fmt.Errorf("lost contact with the gateway, closed the tunnel: %w", err)
		case msg := <-joins:
			fmt.Fprintf(out, "\r\033[K%s %s\n", time.Now().Format("15:04:05"), msg)
			status()
		case <-tick.C:
			status()
		}
	}
}

// confirm shows the customer who asks for access to this machine and for
// what, as the gateway verified it, and asks y/N on the helper's terminal.
// It is the helper's only way to a yes: for a session waiting for consent,
// and as much for one already approved on the web page, since whoever
// opened the link first approved it there, which may not be the customer.
// Only y or yes is a yes; anything else, end of input or Ctrl-C is a no.
// With yes (--yes) it says so and does not ask.
func confirm(ctx context.Context, v assist.View, yes bool, stdin io.Reader, out io.Writer) bool {
	scopes := strings.Join(v.RequestedScopes, ", ")
	if v.State == "active" {
		scopes = strings.Join(v.Scopes, ", ") // what was approved, perhaps less than asked
	}
	fmt.Fprintf(out, "%s asks for access to this machine.\n", v.Agent.Org)
	fmt.Fprintf(out, "  agent:             %s\n", v.Agent.Name)
	fmt.Fprintf(out, "  verification code: %s   (check it with the agent on the phone)\n", v.VerificationCode)
	fmt.Fprintf(out, "  allowed:           %s\n", scopes)
	if v.State == "active" && v.ExpiresAt != nil {
		fmt.Fprintf(out, "  for:               %s, until %s (%s left)\n", v.Duration,
			v.ExpiresAt.Local().Format("15:04:05"), time.Until(*v.ExpiresAt).Truncate(time.Second))
	} else {
		fmt.Fprintf(out, "  for:               %s, from when you allow it\n", v.Duration)
	}
	if v.Reason != "" {
		fmt.Fprintf(out, "  reason:            %s\n", v.Reason)
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
		return true
	}
	fmt.Fprintf(out, "Allow %s to use %s on this machine? [y/N] ", v.Agent.Name, scopes)
	line, _ := bufio.NewReader(stdin).ReadString('\n')
	line = strings.TrimSpace(line)
	return (strings.EqualFold(line, "y") || strings.EqualFold(line, "yes")) && ctx.Err() == nil
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
	return v.EndReason
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
