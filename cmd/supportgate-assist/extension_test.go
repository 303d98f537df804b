package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"supportgate/session"
)

// typist is a terminal for the helper's stdin and the customer's hands on
// it: what they type goes to the helper as typed on a terminal.
func typist(t *testing.T) (stdin *os.File, typeLine func(string)) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close(); ptmx.Close() })
	return tty, func(s string) {
		if _, err := ptmx.WriteString(s + "\n"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestHelperAnswersExtension: a customer who approved in the helper has no
// web page to answer the agent's request for more time on (the link is
// bound to the helper), so the helper asks on its terminal. A yes extends
// the time box; a no to a second request leaves it. Before, the helper
// said nothing and the request could only lapse.
func TestHelperAnswersExtension(t *testing.T) {
	tg := newTestGateway(t)
	s, link := tg.newSession(t, "shell", 30*time.Minute)
	stdin, typeLine := typist(t)
	typeLine("y")
	h := startHelper(t, context.Background(), tg, link, stdin)
	h.waitFor(t, "Connected:")
	defer func() {
		tg.g.Broker().Revoke(context.Background(), s.ID, session.Actor{Name: "alice", Role: "agent"})
		h.exit(t, 10*time.Second)
	}()
	ctx, agent := context.Background(), session.Actor{Name: "alice", Role: "agent"}
	before, _ := tg.g.Broker().Get(ctx, s.ID)

	if _, err := tg.g.Broker().RequestExtension(ctx, s.ID, agent, 15*time.Minute); err != nil {
		t.Fatal(err)
	}
	h.waitFor(t, "Alice Agent asks for 15m0s more. Allow? [y/N]")
	typeLine("y")
	h.waitFor(t, "You allowed 15m0s more.")
	got, _ := tg.g.Broker().Get(ctx, s.ID)
	if d := got.ExpiresAt.Sub(before.ExpiresAt); d != 15*time.Minute || got.Extension != nil {
		t.Fatalf("after yes: expiry moved %v, extension %v; want 15m, none pending", d, got.Extension)
	}

	if _, err := tg.g.Broker().RequestExtension(ctx, s.ID, agent, 20*time.Minute); err != nil {
		t.Fatal(err)
	}
	h.waitFor(t, "asks for 20m0s more. Allow? [y/N]")
	// An Enter alone is no answer: the question stays and is asked again.
	asked := strings.Count(h.out.String(), "asks for 20m0s more. Allow?")
	typeLine("")
	for deadline := time.Now().Add(10 * time.Second); strings.Count(h.out.String(), "asks for 20m0s more. Allow?") == asked; {
		if strings.Contains(h.out.String(), "You refused more time") {
			t.Fatal("an empty line refused the extension")
		}
		if time.Now().After(deadline) {
			t.Fatalf("the question was not asked again after an empty line:\n%s", h.out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	typeLine("n")
	h.waitFor(t, "You refused more time")
	after, _ := tg.g.Broker().Get(ctx, s.ID)
	if !after.ExpiresAt.Equal(got.ExpiresAt) || after.Extension != nil {
		t.Fatalf("after no: expires %v (was %v), extension %v", after.ExpiresAt, got.ExpiresAt, after.Extension)
	}
}
