package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// totpCodes returns oathtool's code for the current time step and the
// next one for the secret in an otpauth:// URI. A code is accepted once,
// and the gateway accepts the next step's too, so a login right after an
// enrollment uses the second.
func (g *gw) totpCodes(uri string) (now, next string) {
	g.t.Helper()
	m := regexp.MustCompile(`secret=([A-Z2-7]+)`).FindStringSubmatch(uri)
	if m == nil {
		g.t.Fatalf("no secret in %q", uri)
	}
	out, err := exec.Command(g.oathtool, "--totp", "-b", "-w", "1", m[1]).Output()
	if err != nil {
		g.t.Fatalf("oathtool: %v", err)
	}
	codes := strings.Fields(string(out))
	if len(codes) != 2 {
		g.t.Fatalf("oathtool printed %q", out)
	}
	return codes[0], codes[1]
}

// enroll follows an enrollment link as its owner would through the
// enrollment page's API and returns the otpauth:// URI it enrolled.
func (g *gw) enroll(link, pw string) string {
	g.t.Helper()
	c := g.browser("x").c
	api := g.url + "/api/v1/enroll/" + link[strings.LastIndex(link, "/")+1:]
	resp, err := c.Get(api)
	if err != nil {
		g.t.Fatal(err)
	}
	var info struct {
		URI string `json:"otpauth_uri"`
	}
	json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		g.t.Fatalf("enrollment link: %d", resp.StatusCode)
	}
	code, _ := g.totpCodes(info.URI)
	body, _ := json.Marshal(map[string]string{"password": pw, "totp": code})
	resp, err = c.Post(api, "application/json", strings.NewReader(string(body)))
	if err != nil {
		g.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		g.t.Fatalf("enrolling: %d", resp.StatusCode)
	}
	return info.URI
}

// loginWith logs name in from a fresh home directory with the next TOTP
// step's code and returns the home, or the CLI's stderr and exit code.
func (g *gw) loginWith(name, pw, code string) (string, string, int) {
	g.t.Helper()
	home := filepath.Join(g.t.TempDir(), name+"-home")
	_, errs, rc := g.run(home, pw+"\n", "login", "--gateway", g.url, "--ca", filepath.Join(g.data, "ca.pem"),
		"--user", name, "--password-stdin", "--totp", code)
	return home, errs, rc
}

// TestE2EReenroll: an agent who lost their phone is reset by an admin
// with the CLI (their session ends, their login dies, a new link enrolls
// a new secret); then the only admin loses theirs, and is reset on the
// data directory with serve stopped, which is refused while serve runs.
func TestE2EReenroll(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	g := newGW(t, e2ePolicy)
	root := g.user("root", "admin")
	alice := g.user("alice", "agent")
	s := g.newSession(alice, "view", "10m")
	g.browser(s.ConsentURL).approve(`["view"]`)

	out := g.mustRun(root, "", "admin", "user", "reenroll", "alice")
	link := regexp.MustCompile(`https://\S+/enroll/\S+`).FindString(out)
	if !strings.Contains(out, "ended 1 open sessions") || link == "" {
		t.Fatalf("reenroll printed %q", out)
	}
	aud := g.user("audrey", "auditor")
	if got := g.show(aud, s.ID); got.State != "ended" || got.EndReason != "revoked" {
		t.Fatalf("alice's session after the reset: %s/%s, want ended/revoked", got.State, got.EndReason)
	}
	if _, errs, code := g.run(alice, "", "session", "list"); code == 0 {
		t.Fatalf("alice's old login still works after the reset: %q", errs)
	}
	const newPW = "alice rides a new horse"
	uri := g.enroll(link, newPW)
	_, next := g.totpCodes(uri)
	if _, errs, code := g.loginWith("alice", newPW, next); code != 0 {
		t.Fatalf("login after enrolling again: exit %d %s", code, errs)
	}

	// The only admin lost their phone. The data directory is reset with
	// serve stopped; while it runs, that is refused.
	totp := filepath.Join(t.TempDir(), "root.totp")
	const rootPW = "root has a new phone now"
	_, errs, code := g.run("", rootPW+"\n", "admin", "user", "reenroll", "--data", g.data, "--name", "root",
		"--password-stdin", "--totp-secret-file", totp)
	if code == 0 || !strings.Contains(errs, "another supportgate serve") {
		t.Fatalf("offline reset beside a running serve: exit %d %q, want refused", code, errs)
	}
	if _, err := os.Stat(totp); err == nil {
		t.Fatal("the refused reset wrote a secret")
	}
	g.kill()
	g.mustRun("", rootPW+"\n", "admin", "user", "reenroll", "--data", g.data, "--name", "root",
		"--password-stdin", "--totp-secret-file", totp)
	g.start()
	secret, err := os.ReadFile(totp)
	if err != nil {
		t.Fatal(err)
	}
	now, _ := g.totpCodes(string(secret))
	if _, errs, code := g.loginWith("root", password, now); code == 0 {
		t.Fatalf("the old password still signs root in: %s", errs)
	}
	_, next = g.totpCodes(string(secret))
	if _, errs, code := g.loginWith("root", rootPW, next); code != 0 {
		t.Fatalf("root after the offline reset: exit %d %s", code, errs)
	}

	// Both resets are in the audit log, which still verifies.
	export := g.mustRun("", "", "audit", "export", "--data", g.data)
	if n := strings.Count(export, `"type":"user.reenroll"`); n != 2 {
		t.Errorf("audit export holds %d user.reenroll records, want 2", n)
	}
	if out := g.mustRun("", "", "audit", "verify", "--data", g.data); !strings.Contains(out, "intact") {
		t.Errorf("audit verify: %q", out)
	}
}
