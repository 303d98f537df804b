package gateway_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/chromedp/chromedp"

	"supportgate/gateway"
	"supportgate/gateway/browsertest"
	"supportgate/gateway/identity"
	"supportgate/gateway/rtc"
	"supportgate/session"
)

// handlerSwitch serves with the handler it holds, which a test replaces
// to stand a restarted gateway behind the same address.
type handlerSwitch struct{ h atomic.Pointer[http.Handler] }

func (s *handlerSwitch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}

func (s *handlerSwitch) set(h http.Handler) { s.h.Store(&h) }

// TestBrowserChatAfterCrash: the gateway dies without a word (SIGKILL,
// power) during a session with chat; a new one starts on the same data,
// and both pages reconnect to its screen-share room. That room numbers
// its chat from 1 again: the pages, which remember the last number they
// showed to skip what a room sends twice, must still show what is said
// now, both ways.
func TestBrowserChatAfterCrash(t *testing.T) {
	t.Parallel()
	w, ident := newRTCWebEnv(t)
	sw := &handlerSwitch{}
	sw.set(w.srv.Config.Handler)
	link := &blip{next: sw}
	w.srv.Config.Handler = link
	secret := w.staff("alice", "Alice Example", identity.RoleAgent, "red")

	cc, ac := make(chan *browsertest.Profile, 1), make(chan *browsertest.Profile, 1)
	go func() { cc <- browsertest.New(t, w.pin) }()
	go func() { ac <- browsertest.New(t, w.pin) }()
	customerB, agentB := <-cc, <-ac
	if customerB == nil || agentB == nil {
		t.Fatal("a browser did not start")
	}
	w.signIn(agentB, "alice", identity.TOTPCode(secret, time.Now()))
	agentB.Do(
		chromedp.WaitVisible(chromedp.CSS("#new-form")),
		chromedp.SetValue(chromedp.CSS("#new-customer"), "Bob at ACME Ltd"),
		chromedp.Click(chromedp.CSS("#new-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#created")),
	)
	ss, err := w.g.Broker().List(context.Background(), session.Filter{Agent: "alice"})
	if err != nil || len(ss) != 1 {
		t.Fatalf("sessions of alice: %v %v", ss, err)
	}
	id := ss[0].ID
	customerB.Do(
		chromedp.Navigate(agentB.Value("#created-link")),
		chromedp.WaitVisible(chromedp.CSS("#request")),
		chromedp.Click(chromedp.CSS("#approve")),
		chromedp.WaitVisible(chromedp.CSS("#share")),
	)
	agentB.Do(
		chromedp.WaitVisible(chromedp.CSS(`#session-rows tr[data-id="`+id+`"] button.watch`)),
		chromedp.Click(chromedp.CSS(`#session-rows tr[data-id="`+id+`"] button.watch`)),
		chromedp.WaitVisible(chromedp.CSS("#screen-chat-text")),
	)
	joined := func(want int) {
		t.Helper()
		for deadline := time.Now().Add(browsertest.Timeout); len(w.auditOf("screen.joined")) < want; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d screen.joined events, want %d", len(w.auditOf("screen.joined")), want)
			}
		}
	}
	joined(2)
	agentLog := `document.getElementById("screen-chat-log").textContent`
	customerLog := `document.getElementById("chat-log").textContent`
	agentB.Do(chromedp.SendKeys(chromedp.CSS("#screen-chat-text"), "Hello Bob"), chromedp.Click(chromedp.CSS("#screen-chat-form button")))
	customerB.Do(browsertest.Until(customerLog + `.includes("Hello Bob")`))
	customerB.Do(chromedp.SendKeys(chromedp.CSS("#chat-text"), "Hi Alice"), chromedp.Click(chromedp.CSS("#chat-form button")))
	agentB.Do(browsertest.Until(agentLog + `.includes("Hi Alice")`))

	// The crash: the connections drop and the gateway is gone, without
	// the "ended" that a clean stop sends. A new gateway starts on the
	// same store and keys.
	link.cut()
	w.g.Close()
	g2, err := gateway.New(gateway.Config{
		Store: w.store, Keys: w.mat, PublicURL: w.srv.URL, Org: "ACME Support",
		Policy:         session.Policy{MinDuration: time.Second, MaxOpenPerAgent: 100},
		PasswordParams: identity.PasswordParams{Memory: 1024, Time: 1, Threads: 1},
		Recipients:     []age.Recipient{ident.Recipient()},
		RTC:            rtc.Config{Loopback: true, UDPPortMin: 42000, UDPPortMax: 42999},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := g2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g2.Close() })
	sw.set(g2.Handler())
	link.down.Store(false)
	joined(4)

	customerB.Do(chromedp.SendKeys(chromedp.CSS("#chat-text"), "are you still there?"), chromedp.Click(chromedp.CSS("#chat-form button")))
	if err := agentB.Try(5*time.Second, browsertest.Until(agentLog+`.includes("are you still there?")`)); err != nil {
		t.Errorf("the agent's page after the restart: %v; it shows %q", err, browsertest.Eval[string](agentB, agentLog))
	}
	agentB.Do(chromedp.SendKeys(chromedp.CSS("#screen-chat-text"), "yes, still here"), chromedp.Click(chromedp.CSS("#screen-chat-form button")))
	if err := customerB.Try(5*time.Second, browsertest.Until(customerLog+`.includes("yes, still here")`)); err != nil {
		t.Errorf("the customer's page after the restart: %v; it shows %q", err, browsertest.Eval[string](customerB, customerLog))
	}
}

// TestBrowserWatchAnother: the agent watches one customer's screen and
// then, from the list beside it, another's. The first signaling socket
// closes after the second opened; its end must not take the second one's
// place, or the agent's chat and answers to the room go nowhere.
func TestBrowserWatchAnother(t *testing.T) {
	t.Parallel()
	w, _ := newRTCWebEnv(t)
	secret := w.staff("alice", "Alice Example", identity.RoleAgent, "red")
	ids := map[string]string{}
	for _, cust := range []string{"Bob", "Carol"} {
		s, token, err := w.g.Broker().Create(context.Background(), session.Actor{Name: "alice", Role: "agent"},
			session.NewRequest{Agent: "alice", AgentName: "Alice Example", Customer: cust,
				Scopes: session.Scopes{{Kind: session.View}, {Kind: session.Chat}}, Duration: 10 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		cu := w.customer(token)
		cu.open()
		if code, v := cu.post("approve", map[string]any{"scopes": []string{"view", "chat"}}); code != http.StatusOK {
			t.Fatalf("approve: %d %v", code, v)
		}
		ids[cust] = s.ID
	}
	agentB := w.browser()
	w.signIn(agentB, "alice", identity.TOTPCode(secret, time.Now()))
	watch := func(cust string) {
		t.Helper()
		agentB.Do(
			chromedp.Click(chromedp.CSS(`#session-rows tr[data-id="`+ids[cust]+`"] button.watch`)),
			browsertest.Until(`document.getElementById("screen-customer").textContent === "`+cust+`" && document.getElementById("screen").dataset.state === "waiting"`),
		)
	}
	agentB.Do(chromedp.WaitVisible(chromedp.CSS(`#session-rows tr[data-id="` + ids["Carol"] + `"] button.watch`)))
	watch("Bob")
	watch("Carol")
	agentB.Do(chromedp.SendKeys(chromedp.CSS("#screen-chat-text"), "Hello Carol"), chromedp.Click(chromedp.CSS("#screen-chat-form button")))
	log := `document.getElementById("screen-chat-log").textContent`
	if err := agentB.Try(5*time.Second, browsertest.Until(log+`.includes("Hello Carol")`)); err != nil {
		t.Errorf("the agent's chat in the second session: %v; the log shows %q, the status %q",
			err, browsertest.Eval[string](agentB, log), agentB.Text("#screen-status"))
	}
}
