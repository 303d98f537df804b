package detect

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Webhook headers. The signature is "sha256=" and the hex HMAC-SHA256, keyed
// with the shared secret, of the timestamp header's value, ".", and the body;
// receivers should reject timestamps more than a few minutes old.
const (
	HeaderSignature = "X-Supportgate-Signature"
	HeaderTimestamp = "X-Supportgate-Timestamp" // Unix seconds
	HeaderDelivery  = "X-Supportgate-Delivery"  // alert ID and severity, "a12.high": the same for retries
)

// WebhookPayload is the JSON body of a webhook delivery.
type WebhookPayload struct {
	Type  string `json:"type"` // "supportgate.alert"
	Alert Alert  `json:"alert"`
}

// WebhookConfig configures a Webhook.
type WebhookConfig struct {
	URL         string           // required: https, or http to a loopback receiver
	Secret      []byte           // required: at least 16 bytes, shared with the receiver
	Client      *http.Client     // nil: a client with a 10 s timeout; redirects are never followed
	QueueSize   int              // alerts waiting for delivery; default 256, beyond it Send drops
	MaxAttempts int              // per alert; default 6
	Backoff     time.Duration    // wait before the first retry, doubling; default 500 ms
	MaxBackoff  time.Duration    // cap on the wait; default 30 s
	Now         func() time.Time // for the timestamp header; nil means time.Now
	Log         *slog.Logger     // nil means discard
}

// DeliveryStats count a sink's work.
type DeliveryStats struct {
	Sent    uint64 // delivered
	Failed  uint64 // given up on after retries, or refused with a 4xx
	Dropped uint64 // not queued (queue full or closed) or abandoned at Close
	Retries uint64 // attempts after the first
}

// Webhook posts alerts as signed JSON to one URL, in order, from one
// goroutine it owns, retrying 5xx, 429 and network errors with exponential
// backoff. It implements Sink.
type Webhook struct {
	cfg    WebhookConfig
	queue  chan Alert
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	sent, failed, dropped, retries atomic.Uint64
}

var _ Sink = (*Webhook)(nil)

// NewWebhook checks cfg and starts delivery.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// Not the URL itself: its path or query is often the secret
		// (Slack- and Teams-style hooks), and this error reaches logs.
		return nil, errors.New("detect: webhook URL: want http(s)://host/path")
	}
	if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		// Alerts name agents, customers and commands: no plaintext
		// channel off the machine (DESIGN.md section 6).
		return nil, fmt.Errorf("detect: webhook URL: http to %s would be plaintext off this machine: use https", u.Host)
	}
	if len(cfg.Secret) < 16 {
		return nil, errors.New("detect: webhook secret must be at least 16 bytes")
	}
	client := &http.Client{Timeout: 10 * time.Second}
	if cfg.Client != nil {
		client = new(http.Client)
		*client = *cfg.Client
	}
	// A redirect is a failure, not followed: it could lead the signed
	// alert to any URL, http:// off this machine included.
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	cfg.Client = client
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 256
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 6
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	w := &Webhook{cfg: cfg, queue: make(chan Alert, cfg.QueueSize)}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.wg.Add(1)
	go w.run()
	return w, nil
}

// Send queues an alert; it never blocks.
func (w *Webhook) Send(a Alert) {
	if w.ctx.Err() != nil {
		w.dropped.Add(1)
		return
	}
	select {
	case w.queue <- a:
	default:
		w.dropped.Add(1)
	}
}

// Close abandons queued and in-flight deliveries (counting them dropped)
// and returns after the delivery goroutine has stopped. Idempotent.
func (w *Webhook) Close() error {
	w.once.Do(func() {
		w.cancel()
		w.wg.Wait()
		w.cfg.Client.CloseIdleConnections()
		for {
			select {
			case <-w.queue:
				w.dropped.Add(1)
			default:
				return
			}
		}
	})
	return nil
}

// Stats returns the delivery counters.
func (w *Webhook) Stats() DeliveryStats {
	return DeliveryStats{Sent: w.sent.Load(), Failed: w.failed.Load(), Dropped: w.dropped.Load(), Retries: w.retries.Load()}
}

func (w *Webhook) run() {
	defer w.wg.Done()
	for {
		select {
		case <-w.ctx.Done():
			return
		case a := <-w.queue:
			w.deliver(a)
		}
	}
}

// Sign returns the signature header value for a body sent at timestamp ts.
func Sign(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature reports, in constant time, whether sig is Sign(secret, ts, body).
func VerifySignature(secret []byte, ts string, body []byte, sig string) bool {
	return hmac.Equal([]byte(sig), []byte(Sign(secret, ts, body)))
}

// errPermanent marks a delivery failure not worth retrying.
type errPermanent struct{ error }

func (w *Webhook) deliver(a Alert) {
	body, err := json.Marshal(WebhookPayload{Type: "supportgate.alert", Alert: a})
	if err != nil {
		w.failed.Add(1)
		w.cfg.Log.Error("webhook: encoding alert", "id", a.ID, "err", err)
		return
	}
	wait := w.cfg.Backoff
	for attempt := 1; ; attempt++ {
		err := w.post(a, body)
		if err == nil {
			w.sent.Add(1)
			return
		}
		if w.ctx.Err() != nil {
			w.dropped.Add(1)
			return
		}
		var perm errPermanent
		if errors.As(err, &perm) || attempt >= w.cfg.MaxAttempts {
			w.failed.Add(1)
			w.cfg.Log.Warn("webhook: giving up on alert", "id", a.ID, "attempts", attempt, "err", err)
			return
		}
		w.cfg.Log.Info("webhook: retrying", "id", a.ID, "attempt", attempt, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-w.ctx.Done():
			t.Stop()
			w.dropped.Add(1)
			return
		case <-t.C:
		}
		w.retries.Add(1)
		wait = min(2*wait, w.cfg.MaxBackoff)
	}
}

func (w *Webhook) post(a Alert, body []byte) error {
	req, err := http.NewRequestWithContext(w.ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return errPermanent{err}
	}
	ts := strconv.FormatInt(w.cfg.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "supportgate-detect/1")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(w.cfg.Secret, ts, body))
	req.Header.Set(HeaderDelivery, a.ID+"."+a.Severity.String())
	resp, err := w.cfg.Client.Do(req)
	if err != nil {
		return redactURLError(err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("webhook: %s", resp.Status)
	default:
		return errPermanent{fmt.Errorf("webhook: %s", resp.Status)}
	}
}

// redactURLError keeps a delivery error's URL to its scheme and host: the
// errors are logged, and the path or query of many webhook URLs is their
// secret. (net/url hides a userinfo password, nothing else.)
func redactURLError(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	shown := "webhook URL"
	if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
		shown = u.Scheme + "://" + u.Host + "/..."
	}
	return fmt.Errorf("webhook: %s %s: %w", ue.Op, shown, ue.Err)
}
