package gateway_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"supportgate/agent"
	"supportgate/gateway"
	"supportgate/gateway/audit"
	"supportgate/gateway/identity"
	"supportgate/recorder"
	"supportgate/session"
)

func init() {
	addAccess(map[string]string{
		"GET /api/v1/recordings":               "auditor",
		"GET /api/v1/recordings/{id}":          "auditor",
		"POST /api/v1/recordings/{id}/audit":   "auditor",
		"GET /api/v1/recordings/{id}/evidence": "auditor",
	})
}

// approved creates a session as u and has its customer approve it.
func (e *env) approved(u *testUser) created {
	e.t.Helper()
	s := e.newSession(u, []string{"view"}, "30m")
	cu := e.customer(s.token())
	cu.open()
	if code, v := cu.post("approve", map[string]any{"scopes": []string{"view"}}); code != http.StatusOK {
		e.t.Fatalf("approve: %d %v", code, v)
	}
	return s
}

// writeRecording puts n random bytes where the gateway keeps the
// recording of session id, and returns them.
func (e *env) writeRecording(id string, n int) []byte {
	e.t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	path := gateway.RecordingPath(e.mat.Dir, id)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		e.t.Fatal(err)
	}
	return data
}

// auditOf returns the stored audit records of a type, oldest first.
func (e *env) auditOf(typ string) []audit.Record {
	e.t.Helper()
	var out []audit.Record
	err := e.store.ScanAudit(context.Background(), 1, func(r audit.Record) error {
		if r.Type == typ {
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

type recordingEntry struct {
	SessionID  string     `json:"session_id"`
	Agent      string     `json:"agent"`
	Customer   string     `json:"customer"`
	Scopes     []string   `json:"scopes"`
	State      string     `json:"state"`
	EndReason  string     `json:"end_reason"`
	ApprovedAt *time.Time `json:"approved_at"`
	EndedAt    *time.Time `json:"ended_at"`
	Size       int64      `json:"size"`
	Modified   *time.Time `json:"modified"`
	Missing    bool       `json:"missing"`
	Status     string     `json:"status"`
}

// TestRecordingsListStatus: the list says, from each file's header and
// signed end, whether a recording is complete, still being written, cut
// short, unreadable or missing.
func TestRecordingsListStatus(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, func(c *gateway.Config) { c.Recipients = []age.Recipient{id.Recipient()} })
	alice := e.addUser("alice", identity.RoleAgent, "red")
	aud := e.addUser("audrey", identity.RoleAuditor, "")
	status := func() map[string]string {
		var out struct{ Recordings []recordingEntry }
		e.do(aud, "GET", "/api/v1/recordings", nil, 200, &out)
		m := map[string]string{}
		for _, r := range out.Recordings {
			m[r.SessionID] = r.Status
		}
		return m
	}

	live := e.approved(alice)
	w, err := e.g.Recording(live.ID)
	if err != nil {
		t.Fatal(err)
	}
	w.Output([]byte("$ uptime\r\n"))
	w.Flush()
	garbage := e.approved(alice)
	e.writeRecording(garbage.ID, 4096)
	none := e.approved(alice)
	if got := status(); got[live.ID] != "recording" || got[garbage.ID] != "unreadable" || got[none.ID] != "missing" {
		t.Fatalf("while live: %v", got)
	}

	// A copy of the live file is what a crash leaves: no signed end.
	crashed := e.approved(alice)
	b, err := os.ReadFile(gateway.RecordingPath(e.mat.Dir, live.ID))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(gateway.RecordingPath(e.mat.Dir, crashed.ID), b, 0o600); err != nil {
		t.Fatal(err)
	}
	e.do(alice, "POST", "/api/v1/sessions/"+crashed.ID+"/revoke", nil, 200, nil)
	e.do(alice, "POST", "/api/v1/sessions/"+live.ID+"/revoke", nil, 200, nil) // closes its recording
	var got map[string]string
	for range 100 { // the writer closes on its own goroutine after the session ends
		if got = status(); got[live.ID] == "complete" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got[live.ID] != "complete" || got[crashed.ID] != "cut_short" {
		t.Fatalf("after the end: %v", got)
	}
}

func TestRecordingsReview(t *testing.T) {
	e := newEnv(t)
	alice := e.addUser("alice", identity.RoleAgent, "red")
	aud := e.addUser("audrey", identity.RoleAuditor, "")

	done := e.approved(alice)
	e.do(alice, "POST", "/api/v1/sessions/"+done.ID+"/revoke", nil, 200, nil)
	data := e.writeRecording(done.ID, 200_000)
	e.clock.Advance(time.Second)
	lost := e.approved(alice) // active, but nothing recorded
	denied := e.newSession(alice, []string{"view"}, "30m")
	cu := e.customer(denied.token())
	cu.open()
	if code, _ := cu.post("deny", nil); code != http.StatusOK {
		t.Fatalf("deny: %d", code)
	}
	e.newSession(alice, []string{"view"}, "30m") // never answered

	t.Run("list", func(t *testing.T) {
		var out struct {
			Recordings []recordingEntry `json:"recordings"`
			Truncated  bool             `json:"truncated"`
		}
		e.do(aud, "GET", "/api/v1/recordings", nil, 200, &out)
		var ids []string
		for _, r := range out.Recordings {
			ids = append(ids, r.SessionID)
		}
		if want := []string{lost.ID, done.ID}; !slices.Equal(ids, want) || out.Truncated {
			t.Fatalf("got %v (truncated %v), want the approved sessions %v, newest first", ids, out.Truncated, want)
		}
		got := out.Recordings[1]
		if got.Agent != "alice" || got.Customer != "ACME Ltd" || !slices.Equal(got.Scopes, []string{"view"}) ||
			got.State != "ended" || got.EndReason != "revoked" || got.ApprovedAt == nil || got.EndedAt == nil {
			t.Errorf("ended session: got %+v", got)
		}
		if got.Size != int64(len(data)) || got.Missing || got.Modified == nil {
			t.Errorf("ended session: got size %d missing %v modified %v, want %d, false, a time", got.Size, got.Missing, got.Modified, len(data))
		}
		if m := out.Recordings[0]; !m.Missing || m.Size != 0 || m.Modified != nil || m.State != "active" || m.EndedAt != nil {
			t.Errorf("session without a file: got %+v, want missing, size 0, no times", m)
		}
	})

	t.Run("download", func(t *testing.T) {
		code, body, h := e.fetch(aud, "/api/v1/recordings/"+done.ID, "")
		if code != http.StatusOK || !bytes.Equal(body, data) {
			t.Fatalf("got %d with %d bytes, want 200 and the %d bytes on disk", code, len(body), len(data))
		}
		if ct := h.Get("Content-Type"); ct != "application/octet-stream" {
			t.Errorf("Content-Type %q, want application/octet-stream", ct)
		}
		if cd, want := h.Get("Content-Disposition"), `attachment; filename="`+done.ID+`.sgrec"`; cd != want {
			t.Errorf("Content-Disposition %q, want %q", cd, want)
		}
		code, body, h = e.fetch(aud, "/api/v1/recordings/"+done.ID, "bytes=1000-1999")
		if code != http.StatusPartialContent || !bytes.Equal(body, data[1000:2000]) {
			t.Fatalf("range: got %d with %d bytes, want 206 and bytes 1000 to 1999", code, len(body))
		}
		if cr, want := h.Get("Content-Range"), fmt.Sprintf("bytes 1000-1999/%d", len(data)); cr != want {
			t.Errorf("Content-Range %q, want %q", cr, want)
		}
		evs := e.auditOf("recording.download")
		if len(evs) != 2 {
			t.Fatalf("got %d recording.download events, want 2", len(evs))
		}
		for i, ev := range evs {
			if ev.Actor != "audrey" || ev.Role != "auditor" || ev.Session != done.ID || ev.Detail["size"] != fmt.Sprint(len(data)) {
				t.Errorf("event %d: got %+v", i, ev.Event)
			}
		}
		if evs[0].Detail["range"] != "" || evs[1].Detail["range"] != "bytes=1000-1999" {
			t.Errorf("ranges: got %q and %q, want none and bytes=1000-1999", evs[0].Detail["range"], evs[1].Detail["range"])
		}
	})

	t.Run("missing", func(t *testing.T) {
		for _, id := range []string{lost.ID, denied.ID, "0123456789abcdef"} {
			code, body, _ := e.fetch(aud, "/api/v1/recordings/"+id, "")
			if code != http.StatusNotFound || !strings.Contains(string(body), `"error"`) {
				t.Errorf("%s: got %d %s, want a 404 JSON error", id, code, body)
			}
		}
	})

	t.Run("notes", func(t *testing.T) {
		for _, action := range []string{"open", "export", "evidence"} {
			e.do(aud, "POST", "/api/v1/recordings/"+done.ID+"/audit", map[string]string{"action": action, "detail": action + " in review"}, 204, nil)
			evs := e.auditOf("recording." + action)
			if len(evs) == 0 {
				t.Fatalf("no recording.%s event", action)
			}
			ev := evs[len(evs)-1]
			if ev.Actor != "audrey" || ev.Role != "auditor" || ev.Session != done.ID || ev.Detail["note"] != action+" in review" || ev.Detail["source"] != "client" {
				t.Errorf("recording.%s: got %+v", action, ev.Event)
			}
		}
		e.do(aud, "POST", "/api/v1/recordings/"+done.ID+"/audit", map[string]string{"action": "open"}, 204, nil)
		for _, c := range []struct {
			name string
			id   string
			body any
			want int
		}{
			{"other action", done.ID, map[string]string{"action": "delete"}, 400},
			{"no action", done.ID, "{}", 400},
			{"unknown field", done.ID, map[string]string{"action": "open", "by": "x"}, 400},
			{"long detail", done.ID, map[string]string{"action": "open", "detail": strings.Repeat("x", gateway.MaxRecordingNote+1)}, 400},
			{"oversize body", done.ID, `{"action":"open","detail":"` + strings.Repeat("x", gateway.MaxBodyBytes) + `"}`, 413},
			{"not JSON", done.ID, "open", 400},
			{"unknown session", "0123456789abcdef", map[string]string{"action": "open"}, 404},
			{"bad id", "0123456789ABCDEF", map[string]string{"action": "open"}, 400},
		} {
			if code, body := e.send(nil, aud, "POST", "/api/v1/recordings/"+c.id+"/audit", c.body); code != c.want {
				t.Errorf("%s: got %d %s, want %d", c.name, code, body, c.want)
			}
		}
		// A browser session must send its CSRF token; the bearer CLI need not.
		bc, csrf := e.browserLogin(aud)
		note := map[string]string{"action": "open"}
		if code, body := e.send(bc, nil, "POST", "/api/v1/recordings/"+done.ID+"/audit", note); code != http.StatusForbidden {
			t.Errorf("cookie without CSRF token: got %d %s, want 403", code, body)
		}
		if code, body := e.send(bc, nil, "POST", "/api/v1/recordings/"+done.ID+"/audit", note, withHeader("X-CSRF-Token", csrf)); code != http.StatusNoContent {
			t.Errorf("cookie with CSRF token: got %d %s, want 204", code, body)
		}
	})

	t.Run("other roles", func(t *testing.T) {
		sup := e.addUser("sam", identity.RoleSupervisor, "red")
		adm := e.addUser("root", identity.RoleAdmin, "")
		before := len(e.auditOf("recording.download"))
		for _, c := range []struct {
			u    *testUser
			want int
		}{{alice, 403}, {sup, 403}, {adm, 403}, {nil, 401}} {
			for _, rq := range []struct{ method, path, body string }{
				{"GET", "/api/v1/recordings", ""},
				{"GET", "/api/v1/recordings/" + done.ID, ""},
				{"POST", "/api/v1/recordings/" + done.ID + "/audit", `{"action":"open"}`},
				{"GET", "/api/v1/recordings/" + done.ID + "/evidence", ""},
			} {
				code, body := e.send(nil, c.u, rq.method, rq.path, rq.body)
				if code != c.want || bytes.Contains(body, data[:64]) {
					name := "nobody"
					if c.u != nil {
						name = c.u.name
					}
					t.Errorf("%s %s as %s: got %d, want %d", rq.method, rq.path, name, code, c.want)
				}
			}
		}
		if after := len(e.auditOf("recording.download")); after != before {
			t.Errorf("refused downloads were audited as downloads: %d events, want %d", after, before)
		}
	})

	t.Run("path traversal", func(t *testing.T) {
		// Files a crafted id might reach, were it ever used as a name.
		dir := filepath.Join(e.mat.Dir, gateway.RecordingsDir)
		os.WriteFile(filepath.Join(dir, "x.sgrec"), []byte("not a session's"), 0o600)
		outside := filepath.Join(e.mat.Dir, "outside.sgrec")
		os.WriteFile(outside, []byte("outside the recordings"), 0o600)
		// And a recording of a real session that is a link out of the directory.
		linked := e.approved(alice)
		if err := os.Symlink(outside, gateway.RecordingPath(e.mat.Dir, linked.ID)); err != nil {
			t.Fatal(err)
		}
		before := len(e.auditOf("recording.download"))
		for _, p := range []string{
			"/api/v1/recordings/x",
			"/api/v1/recordings/..%2foutside",
			"/api/v1/recordings/%2e%2e",
			"/api/v1/recordings/../outside",
			"/api/v1/recordings/..",
			"/api/v1/recordings/0123456789ABCDEF",
			"/api/v1/recordings/0123456789abcdef0",
			"/api/v1/recordings/0123456789abcde%00",
			"/api/v1/recordings/" + linked.ID,
		} {
			code, body, _ := e.fetch(aud, p, "")
			if code == http.StatusOK || bytes.Contains(body, []byte("session's")) || bytes.Contains(body, []byte("outside the")) {
				t.Errorf("%s: got %d %q, want it refused", p, code, body)
			}
			if code != http.StatusBadRequest && code != http.StatusNotFound && p != "/api/v1/recordings/"+linked.ID {
				t.Errorf("%s: got %d %s, want 400 or 404", p, code, body)
			}
		}
		if after := len(e.auditOf("recording.download")); after != before {
			t.Errorf("refused ids were audited as downloads: %d events, want %d", after, before)
		}
	})

	t.Run("range header", func(t *testing.T) {
		code, body, _ := e.fetch(aud, "/api/v1/recordings/"+done.ID, "bytes=0-1,"+strings.Repeat("2-3,", 100))
		if code != http.StatusBadRequest {
			t.Errorf("long Range: got %d %s, want 400", code, body)
		}
	})
}

// fetch GETs path as u with an optional Range header.
func (e *env) fetch(u *testUser, path, rng string) (int, []byte, http.Header) {
	e.t.Helper()
	var opts []reqOpt
	if rng != "" {
		opts = append(opts, withHeader("Range", rng))
	}
	req, err := http.NewRequest("GET", e.srv.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if u != nil {
		req.Header.Set("Authorization", "Bearer "+u.token)
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := e.client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes(), resp.Header
}

func TestRecordingEvidence(t *testing.T) {
	e := newEnv(t)
	alice := e.addUser("alice", identity.RoleAgent, "red")
	bob := e.addUser("bob", identity.RoleAgent, "blue")
	aud := e.addUser("audrey", identity.RoleAuditor, "")

	s := e.approved(alice)
	e.approved(bob) // other sessions' records inside the slice
	e.do(alice, "POST", "/api/v1/sessions/"+s.ID+"/revoke", nil, 200, nil)
	e.newSession(bob, []string{"view"}, "30m")

	raw := e.do(aud, "GET", "/api/v1/recordings/"+s.ID+"/evidence", nil, 200, nil)
	rep, err := audit.VerifySlice(raw, e.mat.SigningPublic)
	if err != nil {
		t.Fatalf("VerifySlice: %v", err)
	}
	if rep.Session != s.ID || rep.FirstType != "session.created" || rep.SessionRecords < 3 || rep.Records <= rep.SessionRecords {
		t.Errorf("got %+v, want the session from its creation, with others' records among its own", rep)
	}
	sl, err := audit.ParseSlice(raw)
	if err != nil {
		t.Fatal(err)
	}
	if sl.PublicKey != base64.StdEncoding.EncodeToString(e.mat.SigningPublic) || sl.KeyID != audit.KeyID(e.mat.SigningPublic) {
		t.Errorf("slice names key %s %s, want the gateway's signing key", sl.KeyID, sl.PublicKey)
	}
	var types []string
	for _, r := range sl.Records {
		if r.Session == s.ID {
			types = append(types, r.Type)
		}
	}
	for _, want := range []string{"session.created", "session.approved", "session.ended"} {
		if !slices.Contains(types, want) {
			t.Errorf("session records %v lack %s", types, want)
		}
	}
	evs := e.auditOf("recording.evidence")
	if len(evs) != 1 || evs[0].Actor != "audrey" || evs[0].Session != s.ID || evs[0].Detail["source"] != "gateway" {
		t.Errorf("got evidence events %+v, want one by audrey from the gateway", evs)
	}

	// Reviews do not stretch the slice: asked again, it is the same.
	e.do(aud, "POST", "/api/v1/recordings/"+s.ID+"/audit", map[string]string{"action": "evidence", "detail": "verified"}, 204, nil)
	e.clock.Advance(time.Minute)
	again := e.do(aud, "GET", "/api/v1/recordings/"+s.ID+"/evidence", nil, 200, nil)
	if !bytes.Equal(again, raw) {
		t.Errorf("the slice changed after a review:\nfirst:  %s\nsecond: %s", raw, again)
	}

	// An edited line is named.
	victim := sl.SessionRecords[1]
	sl2, _ := audit.ParseSlice(raw)
	for i := range sl2.Records {
		if sl2.Records[i].Seq == victim {
			sl2.Records[i].Actor = "mallory"
		}
	}
	edited, _ := json.Marshal(sl2)
	_, err = audit.VerifySlice(edited, e.mat.SigningPublic)
	var te *audit.TamperError
	if !errors.As(err, &te) || te.Seq != victim {
		t.Errorf("edited record %d: got %v, want it named", victim, err)
	}

	for _, c := range []struct {
		id   string
		want int
	}{{"0123456789abcdef", 404}, {"0123456789ABCDEF", 400}, {"x", 400}} {
		if code, body := e.send(nil, aud, "GET", "/api/v1/recordings/"+c.id+"/evidence", nil); code != c.want {
			t.Errorf("evidence of %s: got %d %s, want %d", c.id, code, body, c.want)
		}
	}
}

// TestRecordingsListPages: the list pages through the store past one
// page (session.MaxList), newest first, without repeats, and stops at
// MaxRecordingsList.
func TestRecordingsListPages(t *testing.T) {
	e := newEnv(t)
	aud := e.addUser("audrey", identity.RoleAuditor, "")
	ctx := context.Background()
	n := gateway.MaxRecordingsList * 8 / 7 // a seventh are denied
	if testing.Short() {
		n = session.MaxList + 5
	}
	created := t0.Add(-time.Hour)
	var want []string
	for i := range n {
		s := &session.Session{
			ID: fmt.Sprintf("%016x", 0xa000+i), Agent: "alice", Customer: "ACME Ltd", State: session.Ended,
			Requested: session.Scopes{{Kind: session.View}}, Scopes: session.Scopes{{Kind: session.View}},
			CreatedAt: created.Add(time.Duration(i/2) * time.Second), ApprovedAt: created.Add(time.Duration(i/2)*time.Second + time.Millisecond),
			EndedAt: created.Add(time.Duration(i/2)*time.Second + time.Minute), EndReason: session.EndRevoked,
			TokenHash: [32]byte{byte(i), byte(i >> 8), 1}, Version: 1,
		}
		if i%7 == 3 {
			s.ApprovedAt, s.EndReason = time.Time{}, session.EndDenied // never approved: not listed
		} else {
			want = append(want, s.ID)
		}
		if err := e.store.CreateSession(ctx, session.Change{Session: s}); err != nil {
			t.Fatal(err)
		}
	}
	slices.Reverse(want) // newest first; ties (two per second) by id, descending
	truncated := len(want) > gateway.MaxRecordingsList
	if truncated {
		want = want[:gateway.MaxRecordingsList]
	}
	var out struct {
		Recordings []recordingEntry `json:"recordings"`
		Truncated  bool             `json:"truncated"`
	}
	e.do(aud, "GET", "/api/v1/recordings", nil, 200, &out)
	var got []string
	for _, r := range out.Recordings {
		got = append(got, r.SessionID)
		if !r.Missing {
			t.Fatalf("%s: listed with a recording, want missing", r.SessionID)
		}
	}
	if !slices.Equal(got, want) || out.Truncated != truncated {
		t.Fatalf("got %d recordings (truncated %v), want the newest %d approved (truncated %v)", len(got), out.Truncated, len(want), truncated)
	}
}

// TestRecordingsClient drives the review routes through agent.Client, as
// supportgate review does.
func TestRecordingsClient(t *testing.T) {
	e := newEnv(t)
	alice := e.addUser("alice", identity.RoleAgent, "red")
	aud := e.addUser("audrey", identity.RoleAuditor, "")
	s := e.approved(alice)
	e.do(alice, "POST", "/api/v1/sessions/"+s.ID+"/revoke", nil, 200, nil)
	data := e.writeRecording(s.ID, 1<<20)

	c, err := agent.NewClient(e.srv.URL, e.mat.CAPEM)
	if err != nil {
		t.Fatal(err)
	}
	c.Token = aud.token
	ctx := context.Background()
	recs, truncated, err := c.Recordings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].SessionID != s.ID || recs[0].Size != int64(len(data)) || recs[0].Missing ||
		recs[0].State != "ended" || recs[0].EndReason != "revoked" || recs[0].ApprovedAt == nil || recs[0].Modified == nil {
		t.Fatalf("Recordings: got %+v", recs)
	}
	if truncated {
		t.Error("Recordings: truncated with one session")
	}
	var buf bytes.Buffer
	if n, err := c.DownloadRecording(ctx, s.ID, &buf); err != nil || n != int64(len(data)) || !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("DownloadRecording: got %d bytes, %v; want the %d on disk", n, err, len(data))
	}
	if err := c.NoteRecording(ctx, s.ID, "open", "replayed"); err != nil {
		t.Fatal(err)
	}
	var ae *agent.APIError
	if err := c.NoteRecording(ctx, s.ID, "delete", ""); !errors.As(err, &ae) || ae.Status != 400 {
		t.Errorf("NoteRecording(delete): got %v, want a 400", err)
	}
	ev, err := c.Evidence(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.VerifySlice(ev, e.mat.SigningPublic); err != nil {
		t.Errorf("VerifySlice of Evidence: %v", err)
	}
	if _, err := c.DownloadRecording(ctx, "../keys", io.Discard); !errors.As(err, &ae) || ae.Status != 400 {
		t.Errorf("DownloadRecording(../keys): got %v, want a 400", err)
	}
	c.Token = alice.token
	if _, _, err := c.Recordings(ctx); !errors.As(err, &ae) || ae.Status != 403 {
		t.Errorf("Recordings as an agent: got %v, want a 403", err)
	}
}

// TestRecordingParts: a session resumed after a restart goes on in
// ID.1.sgrec; the list names the part and an auditor downloads it by its
// id. Ids that only look like parts are refused before the disk.
func TestRecordingParts(t *testing.T) {
	e := newEnv(t)
	alice := e.addUser("alice", identity.RoleAgent, "red")
	aud := e.addUser("audrey", identity.RoleAuditor, "")
	s := e.approved(alice)
	e.writeRecording(s.ID, 1000)
	part := e.writeRecording(s.ID+".1", 3000)

	var out struct{ Recordings []agent.Recording }
	e.do(aud, "GET", "/api/v1/recordings", nil, 200, &out)
	if len(out.Recordings) != 1 || len(out.Recordings[0].Parts) != 1 || out.Recordings[0].Parts[0].ID != s.ID+".1" ||
		out.Recordings[0].Parts[0].Size != 3000 {
		t.Fatalf("list: %+v", out.Recordings)
	}
	var got bytes.Buffer
	c, err := agent.NewClient(e.srv.URL, e.mat.CAPEM)
	if err != nil {
		t.Fatal(err)
	}
	c.Token = aud.token
	if _, err := c.DownloadRecording(context.Background(), s.ID+".1", &got); err != nil || !bytes.Equal(got.Bytes(), part) {
		t.Fatalf("download of the part: %v (%d bytes)", err, got.Len())
	}
	if evs := e.auditOf("recording.download"); len(evs) != 1 || evs[0].Detail["part"] != "1" || evs[0].Session != s.ID {
		t.Errorf("audit of the part's download: %+v", evs)
	}
	for _, bad := range []string{s.ID + ".0", s.ID + ".01", s.ID + ".101", s.ID + ".1.2", s.ID + ".x", s.ID + "."} {
		e.do(aud, "GET", "/api/v1/recordings/"+bad, nil, http.StatusBadRequest, nil)
	}
}

// TestCutShortFlaggedAtStart: a gateway that stopped without closing an
// active session's recording (a crash) leaves it without its signed end;
// the next start audits it as recording.cut_short.
func TestCutShortFlaggedAtStart(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	cfg := func(c *gateway.Config) { c.Recipients = []age.Recipient{id.Recipient()} }
	e := newEnvWith(t, cfg)
	alice := e.addUser("alice", identity.RoleAgent, "red")
	s := e.approved(alice)
	w, err := e.g.Recording(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	w.Output([]byte("$ reboot\r\n"))
	w.Flush()
	clean := e.approved(alice) // its recording is closed by the shutdown and stays so
	if cw, err := e.g.Recording(clean.ID); err != nil {
		t.Fatal(err)
	} else {
		cw.Output([]byte("$ uptime\r\n"))
	}
	path := gateway.RecordingPath(e.mat.Dir, s.ID)
	crashed, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Close writes the signed end, which a crash would not have.
	e.g.Close()
	if err := os.WriteFile(path, crashed, 0o600); err != nil {
		t.Fatal(err)
	}

	g2, err := gateway.New(gateway.Config{
		Store: e.store, Keys: e.mat, PublicURL: e.srv.URL, Org: "ACME Support",
		PasswordParams: identity.PasswordParams{Memory: 1024, Time: 1, Threads: 1},
		Clock:          e.clock, Recipients: []age.Recipient{id.Recipient()},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := g2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer g2.Close()
	evs := e.auditOf("recording.cut_short")
	if len(evs) != 1 || evs[0].Session != s.ID || evs[0].Detail["file"] != s.ID+".sgrec" {
		t.Fatalf("recording.cut_short events: %+v", evs)
	}
}

// TestRecordingGatewayStopped: the gateway stopping closes an active
// session's recording with gateway.stopped, not session.ended: the session
// goes on after a restart, in the recording's next part. A session's own
// end still says session.ended with its reason.
func TestRecordingGatewayStopped(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, func(c *gateway.Config) { c.Recipients = []age.Recipient{id.Recipient()} })
	alice := e.addUser("alice", identity.RoleAgent, "red")
	revoked, open := e.approved(alice), e.approved(alice)
	for _, s := range []created{revoked, open} {
		if _, err := e.g.Recording(s.ID); err != nil {
			t.Fatal(err)
		}
	}
	e.do(alice, "POST", "/api/v1/sessions/"+revoked.ID+"/revoke", nil, 200, nil)
	e.g.Close()
	for _, tt := range []struct {
		s    created
		want string
	}{{revoked, `"kind":"session.ended","detail":{"reason":"revoked"}`}, {open, `"kind":"gateway.stopped"`}} {
		var rec *recorder.Reader
		waitFor(5*time.Second, func() bool {
			rec, err = recorder.OpenFile(gateway.RecordingPath(e.mat.Dir, tt.s.ID), id)
			return err == nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var js strings.Builder
		if err := recorder.ExportJSONL(&js, rec, recorder.ExportOptions{}); err != nil {
			t.Fatal(err)
		}
		rec.Close()
		if !strings.Contains(js.String(), tt.want) {
			t.Errorf("recording of %s lacks %s:\n%s", tt.s.ID, tt.want, js.String())
		}
	}
}
