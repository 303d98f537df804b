package gateway_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"supportgate/gateway"
	"supportgate/gateway/browsertest"
	"supportgate/gateway/identity"
	"supportgate/gateway/rtc"
	"supportgate/internal/realpeer"
	"supportgate/recorder"
	"supportgate/session"
)

// The flags that let headless Chromium (Debian's 156) share a screen
// without a person: the permission prompt and the screen picker are
// accepted (use-fake-ui) and the captured "screen" is the generated test
// pattern (use-fake-device; without it getDisplayMedia fails with
// NotReadableError). auto-select-desktop-capture-source, loopback
// candidates and turning off mDNS host names were tried and are not
// needed: the relay answers on loopback and learns the browser's address
// from its connectivity checks.
var shareFlags = []chromedp.ExecAllocatorOption{
	chromedp.Flag("use-fake-ui-for-media-stream", true),
	chromedp.Flag("use-fake-device-for-media-stream", true),
}

// newRTCWebEnv is newWebEnv with a relay on loopback and recordings
// encrypted to a fresh compliance identity.
func newRTCWebEnv(t *testing.T) (*webEnv, *age.X25519Identity) {
	t.Helper()
	ident, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	w := newWebEnvWith(t, func(c *gateway.Config) {
		c.Recipients = []age.Recipient{ident.Recipient()}
		c.RTC = rtc.Config{Loopback: true, UDPPortMin: 42000, UDPPortMax: 42999}
	})
	return w, ident
}

// TestBrowserScreenShare is the screen share end to end in two headless
// Chromium profiles: the customer approves and shares the (fake) screen,
// the agent's console plays it, chat goes both ways, the customer stops
// the session and the agent's video ends within a second; the recording
// verifies and its IVF export decodes in ffmpeg with the frames recorded.
func TestBrowserScreenShare(t *testing.T) { browserScreenShare(t, false) }

// TestBrowserScreenShareH264 is TestBrowserScreenShare with a customer's
// browser that offers H.264 and no VP8: Chromium encodes H.264, the
// agent's console decodes it, and the IVF export holds H.264 that ffmpeg
// decodes.
func TestBrowserScreenShareH264(t *testing.T) { browserScreenShare(t, true) }

// offerOnlyH264 makes a page's PeerConnections offer H.264 (packetization
// mode 1) and no other video codec, as a browser without VP8 would.
const offerOnlyH264 = `(() => {
	const createOffer = RTCPeerConnection.prototype.createOffer;
	RTCPeerConnection.prototype.createOffer = function (...args) {
		const h264 = RTCRtpReceiver.getCapabilities("video").codecs.filter(
			(c) => c.mimeType === "video/H264" && /packetization-mode=1/.test(c.sdpFmtpLine || ""));
		for (const t of this.getTransceivers()) {
			if (t.sender.track && t.sender.track.kind === "video") t.setCodecPreferences(h264);
		}
		return createOffer.apply(this, args);
	};
})();`

func browserScreenShare(t *testing.T, h264 bool) {
	ffmpeg := realpeer.Require(t, "ffmpeg")
	w, ident := newRTCWebEnv(t)
	secret := w.staff("alice", "Alice Example", identity.RoleAgent, "red")

	cc, ac := make(chan *browsertest.Profile, 1), make(chan *browsertest.Profile, 1)
	go func() { cc <- browsertest.New(t, w.pin, shareFlags...) }()
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
	link := agentB.Value("#created-link")
	ss, err := w.g.Broker().List(context.Background(), session.Filter{Agent: "alice"})
	if err != nil || len(ss) != 1 {
		t.Fatalf("sessions of alice: %v %v", ss, err)
	}
	id := ss[0].ID

	if h264 {
		customerB.Do(func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: offerOnlyH264})
			return chromedp.Void{}, err
		})
	}
	customerB.Do(
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.CSS("#request")),
		chromedp.Click(chromedp.CSS("#approve")),
		chromedp.WaitVisible(chromedp.CSS("#share")),
		browsertest.Until(`!document.getElementById("share-start").disabled`),
		chromedp.Click(chromedp.CSS("#share-start")),
	)
	if err := customerB.Try(browsertest.Timeout, chromedp.WaitVisible(chromedp.CSS("#share-indicator"))); err != nil {
		t.Fatalf("sharing did not start: %v; page says %q", err, customerB.Text("#share-status"))
	}
	if got := customerB.Text("#share-indicator"); !strings.Contains(got, "You are sharing your screen with Alice Example") {
		t.Errorf("indicator reads %q", got)
	}

	// The agent opens the viewer; decoded frames grow.
	agentB.Do(
		chromedp.WaitVisible(chromedp.CSS(`#session-rows tr[data-id="`+id+`"] button.watch`)),
		chromedp.Click(chromedp.CSS(`#session-rows tr[data-id="`+id+`"] button.watch`)),
		chromedp.WaitVisible(chromedp.CSS("#screen-video")),
	)
	frames := `document.getElementById("screen-video").getVideoPlaybackQuality().totalVideoFrames`
	if err := agentB.Try(15*time.Second, browsertest.Until(frames+` > 10`)); err != nil {
		t.Fatalf("agent video: %v; status %q, quality %q", err, agentB.Text("#screen-status"), agentB.Text("#screen-quality"))
	}
	n1 := browsertest.Eval[float64](agentB, frames)
	agentB.Do(browsertest.Until(frames + ` > ` + strconv.Itoa(int(n1)+10)))
	agentB.Do(browsertest.Until(`/fps/.test(document.getElementById("screen-quality").textContent)`))
	t.Logf("agent decoded %v+ frames; quality %q", n1, agentB.Text("#screen-quality"))

	// Chat both ways.
	agentB.Do(
		chromedp.SendKeys(chromedp.CSS("#screen-chat-text"), "Hello Bob, I can see your screen"),
		chromedp.Click(chromedp.CSS("#screen-chat-form button")),
	)
	customerB.Do(browsertest.Until(`document.getElementById("chat-log").textContent.includes("Hello Bob, I can see your screen")`))
	customerB.Do(
		chromedp.SendKeys(chromedp.CSS("#chat-text"), "my card is 4111 1111 1111 1111"),
		chromedp.Click(chromedp.CSS("#chat-form button")),
	)
	agentB.Do(browsertest.Until(`document.getElementById("screen-chat-log").textContent.includes("my card is")`))

	// The agent closes the viewer; what Bob writes meanwhile is there when
	// they open it again, after the earlier messages, each once.
	agentB.Do(chromedp.Click(chromedp.CSS("#screen-close")))
	customerB.Do(
		chromedp.SendKeys(chromedp.CSS("#chat-text"), "are you still there?"),
		chromedp.Click(chromedp.CSS("#chat-form button")),
		browsertest.Until(`document.getElementById("chat-log").textContent.includes("are you still there?")`),
	)
	agentB.Do(
		chromedp.Click(chromedp.CSS(`#session-rows tr[data-id="`+id+`"] button.watch`)),
		browsertest.Until(`document.getElementById("screen-chat-log").textContent.includes("are you still there?")`),
	)
	if got := browsertest.Eval[string](agentB, `[...document.querySelectorAll("#screen-chat-log .chat-text")].map((e) => e.textContent).join("|")`); !strings.HasPrefix(got, "Hello Bob, I can see your screen|my card is ") || !strings.HasSuffix(got, "|are you still there?") || strings.Count(got, "|") != 2 {
		t.Errorf("the reopened viewer's chat: %q", got)
	}
	n2 := browsertest.Eval[float64](agentB, frames)
	if err := agentB.Try(15*time.Second, browsertest.Until(frames+` > `+strconv.Itoa(int(n2)+10))); err != nil {
		t.Fatalf("agent video after reopening: %v", err)
	}

	// The customer stops the session: the agent's video ends within 1 s.
	customerB.Do(chromedp.Click(chromedp.CSS("#share-end")))
	start := time.Now()
	if err := agentB.Try(time.Second, browsertest.Until(`document.getElementById("screen").dataset.state === "ended" && document.getElementById("screen-video").srcObject === null`)); err != nil {
		t.Fatalf("agent video still on 1s after the customer's Stop: %v", err)
	}
	t.Logf("agent video ended %v after Stop", time.Since(start))
	customerB.Do(chromedp.WaitVisible(chromedp.CSS("#ended")))

	// The recording verifies and its IVF export decodes.
	path := gateway.RecordingPath(w.mat.Dir, id)
	var rep *recorder.Report
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if rep, err = recorder.VerifyFile(path); err == nil && rep.Complete {
			break
		}
	}
	if err != nil || rep == nil || !rep.Complete {
		t.Fatalf("recording: %v %+v", err, rep)
	}
	rd, err := recorder.OpenFile(path, ident)
	if err != nil {
		t.Fatal(err)
	}
	ivf := filepath.Join(t.TempDir(), "screen.ivf")
	f, err := os.Create(ivf)
	if err != nil {
		t.Fatal(err)
	}
	if err := recorder.ExportIVF(f, rd, recorder.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	hdr, _ := os.ReadFile(ivf)
	wantFrames := int(uint32(hdr[24]) | uint32(hdr[25])<<8 | uint32(hdr[26])<<16 | uint32(hdr[27])<<24)
	if fourcc, want := string(hdr[8:12]), map[bool]string{false: "VP80", true: "H264"}[h264]; fourcc != want {
		t.Errorf("IVF export of %q video, want %q", fourcc, want)
	}
	out, err := exec.Command(ffmpeg, "-v", "error", "-i", ivf, "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	probe, err := exec.Command(ffmpeg, "-v", "error", "-i", ivf, "-map", "0:v", "-f", "framemd5", "-").Output()
	if err != nil {
		t.Fatal(err)
	}
	decoded := 0
	for _, l := range strings.Split(string(probe), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			decoded++
		}
	}
	if wantFrames < 20 || decoded < wantFrames*95/100 || decoded > wantFrames {
		t.Errorf("ffmpeg decoded %d frames of %d exported, want all within 5%%", decoded, wantFrames)
	}
	t.Logf("recording: %d records; IVF %d frames, ffmpeg decoded %d; ffmpeg errors: %q", rep.Records, wantFrames, decoded, out)
}
