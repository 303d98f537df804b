package gateway_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"supportgate/gateway/browsertest"
	"supportgate/gateway/identity"
	"supportgate/session"
)

// TestBrowserReshare: the customer stops sharing and shares again, three
// times, and each time the agent's video comes back (its decoded frames
// grow). Each share is a new PeerConnection numbering its packets from
// wherever Chromium starts; forwarded as they were, about half the
// re-shares jumped the agent's stream back and froze it.
func TestBrowserReshare(t *testing.T) {
	w, _ := newRTCWebEnv(t)
	secret := w.staff("alice", "Alice Example", identity.RoleAgent, "red")
	customerB, agentB := browsertest.New(t, w.pin, shareFlags...), browsertest.New(t, w.pin)
	w.signIn(agentB, "alice", identity.TOTPCode(secret, time.Now()))
	agentB.Do(chromedp.WaitVisible(chromedp.CSS("#new-form")),
		chromedp.SetValue(chromedp.CSS("#new-customer"), "Bob"),
		chromedp.Click(chromedp.CSS("#new-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#created")))
	link := agentB.Value("#created-link")
	ss, _ := w.g.Broker().List(context.Background(), session.Filter{Agent: "alice"})
	customerB.Do(chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#request")),
		chromedp.Click(chromedp.CSS("#approve")), chromedp.WaitVisible(chromedp.CSS("#share")),
		browsertest.Until(`!document.getElementById("share-start").disabled`),
		chromedp.Click(chromedp.CSS("#share-start")), chromedp.WaitVisible(chromedp.CSS("#share-indicator")))
	row := `#session-rows tr[data-id="` + ss[0].ID + `"] button.watch`
	agentB.Do(chromedp.WaitVisible(chromedp.CSS(row)), chromedp.Click(chromedp.CSS(row)),
		chromedp.WaitVisible(chromedp.CSS("#screen-video")))

	const frames = `document.getElementById("screen-video").getVideoPlaybackQuality().totalVideoFrames`
	if err := agentB.Try(15*time.Second, browsertest.Until(frames+` > 10`)); err != nil {
		t.Fatalf("the first share never played: %v", err)
	}
	for round := 1; round <= 3; round++ {
		customerB.Do(chromedp.Click(chromedp.CSS("#share-stop")))
		agentB.Do(browsertest.Until(`document.getElementById("screen").dataset.state === "stopped"`))
		customerB.Do(chromedp.Click(chromedp.CSS("#share-start")), chromedp.WaitVisible(chromedp.CSS("#share-indicator")))
		agentB.Do(browsertest.Until(`document.getElementById("screen").dataset.state === "sharing"`))
		n := browsertest.Eval[float64](agentB, frames)
		if err := agentB.Try(10*time.Second, browsertest.Until(frames+` > `+strconv.Itoa(int(n)+10))); err != nil {
			t.Errorf("share %d: the agent's video did not come back (%v frames decoded, then none)", round+1, n)
		}
	}
}
