package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"supportgate/internal/realpeer"
)

// TestE2EOperatorSurprises covers what an operator following the README's
// quick start ran into: each subtest failed before its fix.
func TestE2EOperatorSurprises(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	g := newGW(t, `{"min_duration": "1s"}`)
	alice := g.user("alice", "agent")

	t.Run("audit verify refuses what it does not use", func(t *testing.T) {
		// -o was listed in `audit verify --help` and taken, and no file was
		// written; a data directory given without --data verified ./data.
		for _, args := range [][]string{
			{"audit", "verify", "--data", g.data, "-o", t.TempDir() + "/verify.out"},
			{"audit", "verify", g.data},
			{"audit", "export", g.data},
		} {
			_, errs, code := g.run("", "", args...)
			if code != 2 || !strings.HasPrefix(errs, "supportgate: ") || strings.Count(errs, "\n") != 1 {
				t.Errorf("%v: exit %d, stderr %q; want a one-line usage error, exit 2", args, code, errs)
			}
		}
		if help, _, _ := g.run("", "", "audit", "verify", "--help"); strings.Contains(help, "-o") {
			t.Errorf("audit verify --help lists -o:\n%s", help)
		}
		if help, _, _ := g.run("", "", "audit", "export", "--help"); !strings.Contains(help, "-o") {
			t.Errorf("audit export --help lacks -o:\n%s", help)
		}
	})

	t.Run("list shows when an ended session ended", func(t *testing.T) {
		// ENDS showed the end of the time box a revoke had cut short.
		s := g.newSession(alice, "view", "30m")
		g.browser(s.ConsentURL).approve(`["view"]`)
		g.mustRun(alice, "", "session", "revoke", s.ID)
		got := g.show(alice, s.ID)
		if got.EndedAt == nil || got.ExpiresAt == nil {
			t.Fatalf("after revoke: %+v", got)
		}
		list := g.mustRun(alice, "", "session", "list")
		var line string
		for _, l := range strings.Split(list, "\n") {
			if strings.HasPrefix(l, s.ID) {
				line = l
			}
		}
		ended, box := got.EndedAt.Local().Format("15:04:05"), got.ExpiresAt.Local().Format("15:04:05")
		if !strings.HasSuffix(strings.TrimSpace(line), ended) || strings.Contains(line, box) {
			t.Errorf("session list line %q; want it to end with the end, %s, not the time box's %s", line, ended, box)
		}
	})

	t.Run("session new and show read as text", func(t *testing.T) {
		// show printed JSON without --json, and new did not say how long
		// the link works.
		out := g.mustRun(alice, "", "session", "new", "--customer", "Bob at ACME", "--scope", "view,chat", "--duration", "30m")
		m := regexp.MustCompile(`session (\S+) requested`).FindStringSubmatch(out)
		if m == nil || !strings.Contains(out, "the link works until ") {
			t.Fatalf("session new: %q; want the id and until when the link works", out)
		}
		id := m[1]
		fields := func() map[string]string {
			t.Helper()
			show := g.mustRun(alice, "", "session", "show", id)
			if strings.HasPrefix(show, "{") {
				t.Fatalf("session show without --json printed JSON: %s", show)
			}
			f := map[string]string{}
			for _, l := range strings.Split(strings.TrimSpace(show), "\n") {
				k, v, _ := strings.Cut(l, "  ")
				f[k] = strings.TrimSpace(v)
			}
			return f
		}
		f := fields()
		if f["state"] != "requested" || f["customer"] != "Bob at ACME" || f["code"] == "" || f["link works until"] == "" {
			t.Errorf("a requested session shows %q", f)
		}
		var url string
		for _, l := range strings.Split(out, "\n") {
			if u, ok := strings.CutPrefix(l, "send the customer this link: "); ok {
				url = u
			}
		}
		g.browser(url).approve(`["view"]`)
		f = fields()
		if f["state"] != "active" || f["scopes"] != "view (asked for view, chat)" || !strings.HasSuffix(f["ends"], " left)") || f["code"] != "" {
			t.Errorf("an active session shows %q", f)
		}
		g.mustRun(alice, "", "session", "revoke", id)
		if f = fields(); f["state"] != "ended: revoked by alice" || f["ended"] == "" || f["ends"] != "" {
			t.Errorf("a revoked session shows %q", f)
		}
	})

	t.Run("ssh to an ended session says why and only that", func(t *testing.T) {
		// OpenSSH offers the bare key after the refused certificate, and
		// the bastion's "plain keys are not accepted" followed the reason.
		// The plain OpenSSH command line of the README as well.
		realpeer.Require(t, "ssh")
		s := g.newSession(alice, "shell", "30m")
		g.mustRun(alice, "", "session", "revoke", s.ID)
		_, errs, code := g.run(alice, "", "ssh", s.ID, "true")
		if code == 0 || !strings.Contains(errs, "is ended, not active") || strings.Contains(errs, "plain keys") {
			t.Errorf("ssh to an ended session: exit %d, stderr %q; want the reason alone", code, errs)
		}
		port := g.sshAddr[strings.LastIndex(g.sshAddr, ":")+1:]
		ssh := exec.Command("ssh", "-p", port, "-i", filepath.Join(alice, "id_ed25519"),
			"-o", "CertificateFile="+filepath.Join(alice, "id_ed25519-cert.pub"),
			"-o", "UserKnownHostsFile="+filepath.Join(alice, "known_hosts"), "-o", "BatchMode=yes",
			"-F", "/dev/null", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", // this machine's keys aside
			s.ID+"@localhost", "true")
		out, _ := ssh.CombinedOutput()
		if !strings.Contains(string(out), "is ended, not active") || strings.Contains(string(out), "plain keys") {
			t.Errorf("plain OpenSSH to an ended session: %q; want the reason alone", out)
		}
	})
}
