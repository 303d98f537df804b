package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"supportgate/internal/syncbuf"
)

var reviewURLRE = regexp.MustCompile(`Open (http://127\.0\.0\.1:\d+/r/[A-Za-z0-9_-]{43}/)\n`)

// reviewThroughGateway runs `supportgate review` against the gateway as
// an auditor and checks what a reviewer does with session id: it is listed
// and verified, opens, exports with want in the terminal output, and its
// evidence bundle passes `supportgate verify`; each access is in the
// gateway's audit log with the auditor as actor. Agents and admins are
// refused.
func reviewThroughGateway(t *testing.T, g *gw, id, want string) {
	t.Helper()
	carol := g.user("carol", "auditor")
	identity := filepath.Join(g.data, "compliance-identity.txt")

	for _, role := range []string{"agent", "admin"} {
		home := g.user("refused-"+role, role)
		_, errOut, code := g.run(home, "", "review", "--identity", identity, g.url)
		if code == 0 || !strings.Contains(errOut, "needs an auditor login") {
			t.Errorf("review as %s: exit %d, stderr %q; want a refusal", role, code, errOut)
		}
	}

	cmd := exec.Command(g.bin, "review", "--identity", identity, g.url)
	cmd.Env = append(os.Environ(), "SUPPORTGATE_HOME="+carol)
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	var link string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m := reviewURLRE.FindStringSubmatch(out.String()); m != nil {
			link = m[1]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("review printed no link:\n%s", out.String())
		}
	}
	// Every path of the player is under the link's secret prefix; it
	// sets no cookie, so the client keeps none.
	base := strings.TrimSuffix(link, "/")
	c := &http.Client{Timeout: 30 * time.Second}
	get := func(path string) []byte {
		t.Helper()
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %s: %s", path, resp.Status, b)
		}
		return b
	}
	get("/")
	if resp, err := c.Get(link[:strings.Index(link, "/r/")] + "/api/recordings"); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the API outside the link's prefix: %s, want 404", resp.Status)
	}

	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var list struct {
			Recordings []struct{ ID, Status, Agent string }
		}
		json.Unmarshal(get("/api/recordings"), &list)
		status := ""
		for _, r := range list.Recordings {
			if r.ID == id {
				status = r.Status
			}
		}
		if status == "verified" {
			break
		}
		if status != "verifying" && status != "" || time.Now().After(deadline) {
			t.Fatalf("recording %s in the review list: status %q", id, status)
		}
	}
	get("/api/recordings/" + id)
	if cast := get("/api/recordings/" + id + "/export?format=asciicast"); !strings.Contains(string(cast), want) {
		t.Errorf("asciicast export lacks %q", want)
	}
	bundle := filepath.Join(t.TempDir(), "evidence.zip")
	if err := os.WriteFile(bundle, get("/api/recordings/"+id+"/evidence.zip"), 0o600); err != nil {
		t.Fatal(err)
	}
	vout, verr, code := g.run("", "", "verify", bundle)
	if code != 0 || !regexp.MustCompile(`audit: +\d+ records, chain and checkpoint signature verified`).MatchString(vout) {
		t.Errorf("verify evidence bundle: exit %d\n%s%s", code, vout, verr)
	}

	// Each access is in the gateway's audit log, by carol, for the session.
	log := g.mustRun("", "", "audit", "export", "--data", g.data)
	for _, typ := range []string{"recording.download", "recording.open", "recording.export", "recording.evidence"} {
		found := false
		for _, line := range strings.Split(log, "\n") {
			var rec struct{ Type, Actor, Session string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Type == typ && rec.Actor == "carol" && rec.Session == id {
				found = true
			}
		}
		if !found {
			t.Errorf("no %s event by carol for %s in the audit log", typ, id)
		}
	}
}
