package audit_test

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"supportgate/gateway/audit"
)

// TestComputeHashSpec recomputes a hash from the format as documented, by
// hand, so that the encoding cannot drift without this test noticing.
func TestComputeHashSpec(t *testing.T) {
	r := audit.Record{
		Seq: 7,
		Event: audit.Event{
			Time:   time.Date(2026, 1, 2, 4, 4, 5, 600000000, time.FixedZone("CET", 3600)),
			Type:   "login.success",
			Actor:  "alice",
			Detail: map[string]string{"b": "2", "a": "<1>"},
		},
		Prev: "ab",
		Sig:  "ignored",
	}
	canonical := `{"seq":7,"time":"2026-01-02T03:04:05.6Z","type":"login.success","actor":"alice","role":"","session":"","remote":"","detail":{"a":"\u003c1\u003e","b":"2"}}`
	sum := sha256.Sum256([]byte("supportgate audit record v1\x00" + "ab" + "\x00" + canonical))
	if got, want := r.ComputeHash(), hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	// nil and empty Detail hash alike.
	a := audit.Record{Seq: 1, Event: audit.Event{Type: "x"}}
	b := a
	b.Detail = map[string]string{}
	if a.ComputeHash() != b.ComputeHash() {
		t.Fatal("nil and empty Detail hash differently")
	}
}
