package audit_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	"supportgate/gateway/audit"
	"supportgate/gateway/audit/audittest"
)

// TestTwoWriters covers `supportgate admin` appending to the data
// directory of a running gateway: each Log chains onto what the other
// stored, and the result verifies.
func TestTwoWriters(t *testing.T) {
	ctx := context.Background()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	st := audittest.NewStore()
	a, err := audit.New(audit.Config{Store: st, Signer: priv})
	if err != nil {
		t.Fatal(err)
	}
	b, err := audit.New(audit.Config{Store: st, Signer: priv})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		w := a
		if i%3 == 1 {
			w = b
		}
		if _, err := w.Append(ctx, audit.Event{Type: "test.event", Actor: "x"}); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, st, pub)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records < 10 {
		t.Fatalf("got %d records, want at least 10", rep.Records)
	}
}
