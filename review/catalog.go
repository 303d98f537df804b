package review

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"filippo.io/age"

	"supportgate/recorder"
)

// catalog holds the recordings of one review and what the verifying pass
// found in each. Passes run in the background, scanWorkers at a time;
// the player does not wait for them.
type catalog struct {
	src  Source
	ids  []age.Identity
	log  *slog.Logger
	text *textBudget // the search text of every pass

	mu      sync.Mutex // guards entries, order
	entries map[string]*entry
	order   []string

	cancel context.CancelFunc
	wg     sync.WaitGroup // scan workers
}

const scanWorkers = 2

type entry struct {
	item Item
	sum  *Summary // nil until the pass finished
}

// view is an entry as the list API shows it.
type view struct {
	Item
	Status     Status   `json:"status"`
	Problem    string   `json:"problem,omitempty"`
	TamperedAt uint64   `json:"tampered_at,omitempty"`
	DurationMS int64    `json:"duration_ms"`
	Video      bool     `json:"video"`
	Terminal   bool     `json:"terminal"`
	Signer     string   `json:"signer,omitempty"`
	Summary    *Summary `json:"-"`
}

func newCatalog(ctx context.Context, src Source, ids []age.Identity, text *textBudget, log *slog.Logger) (*catalog, error) {
	items, err := src.List(ctx)
	if err != nil {
		return nil, err
	}
	c := &catalog{src: src, ids: ids, log: log, text: text, entries: map[string]*entry{}}
	for _, it := range items {
		if _, dup := c.entries[it.ID]; dup || !validID(it.ID) {
			continue
		}
		e := &entry{item: it}
		if it.Missing {
			e.sum = &Summary{Status: StatusMissing, Problem: "the session has no recording", Markers: []Marker{}, Chat: []ChatLine{}}
		}
		c.entries[it.ID] = e
		c.order = append(c.order, it.ID)
	}
	sctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	work := make(chan string)
	for range scanWorkers {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for id := range work {
				c.scanOne(sctx, id)
			}
		}()
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(work)
		for _, id := range c.order {
			if c.entry(id).sum != nil {
				continue
			}
			select {
			case work <- id:
			case <-sctx.Done():
				return
			}
		}
	}()
	return c, nil
}

// close stops the passes and waits for them.
func (c *catalog) close() {
	c.cancel()
	c.wg.Wait()
}

func (c *catalog) entry(id string) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries[id]
}

// scanOne runs the verifying pass over one recording.
func (c *catalog) scanOne(ctx context.Context, id string) {
	start := time.Now()
	sum := &Summary{Markers: []Marker{}, Chat: []ChatLine{}}
	r, closeFn, err := c.open(ctx, id)
	if err != nil {
		sum.Status, sum.Problem = StatusUnreadable, err.Error()
	} else {
		sum = scan(ctx, r, c.text)
		closeFn()
	}
	if ctx.Err() != nil {
		return
	}
	c.mu.Lock()
	if e := c.entries[id]; e != nil {
		e.sum = sum
		sum.fillItem(&e.item)
	}
	c.mu.Unlock()
	c.log.Debug("recording verified", "id", id, "status", sum.Status, "took", time.Since(start))
}

// fillItem completes what a folder could not say from the session.info
// event the gateway writes at the start of every recording.
func (s *Summary) fillItem(it *Item) {
	if s.Info != nil {
		if it.SessionID == "" {
			it.SessionID = s.Info["session"]
		}
		if it.Agent == "" {
			it.Agent = s.Info["agent"]
		}
		if it.Customer == "" {
			it.Customer = s.Info["customer"]
		}
		if len(it.Scopes) == 0 && s.Info["scopes"] != "" {
			it.Scopes = strings.Split(s.Info["scopes"], ",")
		}
		if t, err := time.Parse(time.RFC3339, s.Info["approved_at"]); err == nil && it.Start.IsZero() {
			it.Start = t
		}
	}
	if it.EndReason == "" {
		it.EndReason = s.EndReason
	}
}

// open opens a recording for decryption. The caller calls the returned
// function when done.
func (c *catalog) open(ctx context.Context, id string) (*recorder.Reader, func(), error) {
	if c.entry(id) == nil {
		return nil, nil, errNotFound
	}
	f, err := c.src.Open(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	r, err := recorder.Open(f, f.Size(), c.ids...)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "recorder: "))
	}
	h := r.Header()
	c.mu.Lock()
	it := &c.entries[id].item
	if it.SessionID == "" {
		// A folder knows only file names: the signed header says more.
		it.SessionID = h.SessionID
	}
	// The file's own start, from its signed header: the player's times
	// count from it, and a part resumed after a restart starts later
	// than the session's approval.
	it.Start = h.Start
	c.mu.Unlock()
	return r, func() { f.Close() }, nil
}

var errNotFound = errors.New("no such recording")

// list returns every entry's view, in the source's order.
func (c *catalog) list() []view {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]view, 0, len(c.order))
	for _, id := range c.order {
		out = append(out, c.entries[id].viewLocked())
	}
	return out
}

func (c *catalog) view(id string) (view, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[id]
	if e == nil {
		return view{}, false
	}
	return e.viewLocked(), true
}

func (e *entry) viewLocked() view {
	v := view{Item: e.item, Status: StatusPending}
	if v.Scopes == nil {
		v.Scopes = []string{}
	}
	if s := e.sum; s != nil {
		v.Status, v.Problem, v.TamperedAt = s.Status, s.Problem, s.TamperedAt
		v.DurationMS = s.Duration.Milliseconds()
		v.Video, v.Terminal, v.Signer = s.Video.Frames > 0, s.HasTerminal, s.Signer
		v.Summary = s
	}
	return v
}

// Hit is one search result.
type Hit struct {
	ID   string `json:"id"`
	MS   int64  `json:"t"`
	Text string `json:"text"`
	// Channel is the terminal channel of a line of output or input;
	// absent for chat and events.
	Channel *int `json:"channel,omitempty"`
}

// maxHits caps the results of one search.
const maxHits = 200

// search finds q, case-insensitively, in the terminal text and chat of
// every recording whose pass has finished. cut counts the recordings
// whose text the review's budget for search text cut short.
func (c *catalog) search(q string) (hits []Hit, cut int) {
	q = strings.ToLower(strings.TrimSpace(q))
	c.mu.Lock()
	type src struct {
		id    string
		lines []textLine
	}
	var srcs []src
	for _, id := range c.order {
		if s := c.entries[id].sum; s != nil {
			srcs = append(srcs, src{id, s.lines})
			if s.TextCut {
				cut++
			}
		}
	}
	c.mu.Unlock()
	hits = []Hit{}
	if q == "" {
		return hits, cut
	}
	for _, s := range srcs {
		for _, l := range s.lines {
			if containsFold(l.text, q) {
				h := Hit{ID: s.id, MS: l.t.Milliseconds(), Text: l.text}
				if l.ch >= 0 {
					ch := int(l.ch)
					h.Channel = &ch
				}
				hits = append(hits, h)
				if len(hits) == maxHits {
					return hits, cut
				}
			}
		}
	}
	return hits, cut
}

// containsFold reports whether s contains the lower-case needle q, ignoring
// the case of s.
func containsFold(s, q string) bool {
	if len(q) > len(s) {
		return false
	}
	for i := 0; i+len(q) <= len(s); i++ {
		if lowerEq(s[i:i+len(q)], q) {
			return true
		}
	}
	return false
}

func lowerEq(a, q string) bool {
	for i := 0; i < len(q); i++ {
		c := a[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != q[i] {
			return false
		}
	}
	return true
}
