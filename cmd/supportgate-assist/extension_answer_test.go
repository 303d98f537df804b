package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"supportgate/assist"
)

// TestExtensionAskedAgainAfterFailedAnswer: an answer that did not reach
// the gateway leaves the request pending there; the next view shows it
// again and the helper asks again. It used to take it as already told,
// and the customer's yes could never be given.
func TestExtensionAskedAgainAfterFailedAnswer(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			http.Error(w, `{"error":"unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(`{"state":"active"}`))
	}))
	defer srv.Close()
	cs, err := assist.Open(context.Background(), srv.Client(), srv.URL+"/c/tok")
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	at := time.Now()
	e := &assist.Extension{By: "15m0s", RequestedAt: &at}
	x := &extensionAsk{cs: cs, out: &out, agent: "Alice", tty: true}
	x.seen(e)
	x.answer(context.Background(), "y\n")
	same := *e // the next view: the same request, still pending at the gateway
	x.seen(&same)
	if !x.asking() || !strings.Contains(out.String(), "did not reach the gateway") {
		t.Errorf("the helper does not ask again after a failed answer; it printed %q", out.String())
	}
}
