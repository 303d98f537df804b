package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"supportgate/agent"
)

// fakeGateway serves h over TLS and returns a client for it with a token.
func fakeGateway(t *testing.T, h http.HandlerFunc) *agent.Client {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	c, err := agent.NewClient(srv.URL, ca)
	if err != nil {
		t.Fatal(err)
	}
	c.Token = "sgt_test"
	return c
}

func TestRecordingsCalls(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), (agent.MaxResponseBytes+1<<20)/16) // past the JSON limit
	var noted map[string]string
	c := fakeGateway(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer sgt_test" {
			http.Error(w, `{"error":"no token"}`, 401)
			return
		}
		switch r.Method + " " + r.URL.Path {
		case "GET /api/v1/recordings":
			w.Write([]byte(`{"recordings":[{"session_id":"0123456789abcdef","agent":"alice","customer":"ACME","scopes":["view"],` +
				`"state":"ended","end_reason":"revoked","approved_at":"2026-11-29T09:00:00Z","ended_at":null,"size":5,"modified":null,"missing":false}],"truncated":true}`))
		case "GET /api/v1/recordings/0123456789abcdef":
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(big)
		case "GET /api/v1/recordings/aaaaaaaaaaaaaaaa":
			w.Header().Set("Content-Length", "100")
			w.Write(make([]byte, 50)) // and the connection ends
		case "GET /api/v1/recordings/bbbbbbbbbbbbbbbb":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(404)
			w.Write([]byte(`{"error":"the recording of session bbbbbbbbbbbbbbbb is missing"}`))
		case "POST /api/v1/recordings/0123456789abcdef/audit":
			json.NewDecoder(r.Body).Decode(&noted)
			w.WriteHeader(204)
		case "GET /api/v1/recordings/0123456789abcdef/evidence":
			w.Write([]byte(`{"format":"supportgate-audit-slice-v1"}`))
		case "GET /api/v1/recordings/cccccccccccccccc/evidence":
			w.Write([]byte(`not json`))
		default:
			http.Error(w, `{"error":"not found"}`, 404)
		}
	})
	ctx := context.Background()

	recs, truncated, err := c.Recordings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].SessionID != "0123456789abcdef" || recs[0].EndReason != "revoked" || recs[0].ApprovedAt == nil ||
		recs[0].EndedAt != nil || recs[0].Size != 5 || len(recs[0].Scopes) != 1 {
		t.Errorf("Recordings: got %+v", recs)
	}
	if !truncated {
		t.Error("Recordings: the gateway's truncated flag was lost")
	}

	var buf bytes.Buffer
	n, err := c.DownloadRecording(ctx, "0123456789abcdef", &buf)
	if err != nil || n != int64(len(big)) || !bytes.Equal(buf.Bytes(), big) {
		t.Errorf("DownloadRecording: got %d bytes, %v; want all %d", n, err, len(big))
	}
	if _, err := c.DownloadRecording(ctx, "aaaaaaaaaaaaaaaa", io.Discard); err == nil {
		t.Error("DownloadRecording of a cut-short answer: got nil, want an error")
	}
	_, err = c.DownloadRecording(ctx, "bbbbbbbbbbbbbbbb", io.Discard)
	var ae *agent.APIError
	if !errors.As(err, &ae) || ae.Status != 404 || !strings.Contains(ae.Message, "missing") {
		t.Errorf("DownloadRecording of a missing one: got %v, want the gateway's 404", err)
	}
	if _, err := c.DownloadRecording(ctx, "", io.Discard); err == nil {
		t.Error("DownloadRecording without an id: got nil, want an error")
	}

	if err := c.NoteRecording(ctx, "0123456789abcdef", "open", "played"); err != nil {
		t.Fatal(err)
	}
	if noted["action"] != "open" || noted["detail"] != "played" {
		t.Errorf("NoteRecording sent %v", noted)
	}

	ev, err := c.Evidence(ctx, "0123456789abcdef")
	if err != nil || string(ev) != `{"format":"supportgate-audit-slice-v1"}` {
		t.Errorf("Evidence: got %s, %v", ev, err)
	}
	if _, err := c.Evidence(ctx, "cccccccccccccccc"); err == nil {
		t.Error("Evidence that is not JSON: got nil, want an error")
	}
}

// TestDoRefusesOversize: an answer past MaxResponseBytes is an error, not
// a truncated body.
func TestDoRefusesOversize(t *testing.T) {
	c := fakeGateway(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`"`))
		w.Write(bytes.Repeat([]byte("x"), agent.MaxResponseBytes))
		w.Write([]byte(`"`))
	})
	var raw json.RawMessage
	if err := c.Do(context.Background(), "GET", "/x", nil, &raw); err == nil || !strings.Contains(err.Error(), "over") {
		t.Fatalf("got %v (%d bytes), want an error about the size", err, len(raw))
	}
}
