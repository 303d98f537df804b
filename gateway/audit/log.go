package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"
)

// Defaults for Config.
const (
	DefaultCheckpointEvery    = 100
	DefaultCheckpointInterval = 10 * time.Second
)

// maxBatch bounds how many queued calls one Store.AppendAudit carries.
const maxBatch = 256

// ErrClosed is returned by Append and Checkpoint after Close.
var ErrClosed = errors.New("audit: log is closed")

// Config configures a Log. It is checked once, by New.
type Config struct {
	// Store persists the records. Required.
	Store Store
	// Signer signs checkpoints. Required. Verify needs its public key.
	Signer ed25519.PrivateKey
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// CheckpointEvery is the number of records after which a checkpoint is
	// written; 0 means DefaultCheckpointEvery.
	CheckpointEvery int
	// CheckpointInterval is the time after the last checkpoint at which the
	// next Append writes one; 0 means DefaultCheckpointInterval.
	CheckpointInterval time.Duration
	// Logger receives store failures and checkpoint notes; nil discards.
	Logger *slog.Logger
}

// Log appends events to a Store as a hash chain with signed checkpoints. It
// is safe for concurrent use. Concurrent Appends are committed together
// ("group commit"): one caller at a time, the leader, takes the queued calls,
// chains them onto the head and hands them to the Store in one AppendAudit;
// it then passes leadership to the next queued caller, so nobody commits for
// others for longer than one batch.
type Log struct {
	store    Store
	signer   ed25519.PrivateKey
	keyID    string
	now      func() time.Time
	every    int
	interval time.Duration
	logger   *slog.Logger

	closeOnce sync.Once
	closeErr  error // set inside closeOnce

	mu sync.Mutex
	// The chain head, guarded by mu. Only the leader changes it, and only
	// after the Store accepted the batch, so a Store error leaves it as it was.
	seq            uint64    // Seq of the last stored record, 0 if none
	head           string    // Hash of the last stored record, GenesisHash if none
	unsigned       int       // records stored after the last checkpoint
	lastCheckpoint time.Time // when the last checkpoint was written (or New ran)
	// The commit queue, guarded by mu.
	queue   []*pending // calls waiting to be committed, oldest first
	leading bool       // a caller is committing; queue[0] is told when it ends
	closed  bool       // Close has begun; new calls are refused
}

// pending is one queued Append or checkpoint request.
type pending struct {
	ev         Event         // the event to chain (Append)
	checkpoint string        // if set, a checkpoint request with this reason
	wake       chan struct{} // capacity 1; signalled when lead or done changes

	// Guarded by Log.mu.
	lead bool   // this caller is to commit the next batch
	done bool   // rec and err are final
	rec  Record // the stored record (Append)
	err  error
}

// New returns a Log that continues the chain found in cfg.Store. It refuses
// to start on a store whose newest record does not match its own hash, since
// chaining onto a forged head would lend it credibility: run Verify first.
func New(cfg Config) (*Log, error) {
	if cfg.Store == nil {
		return nil, errors.New("audit: Store is required")
	}
	if len(cfg.Signer) != ed25519.PrivateKeySize {
		return nil, errors.New("audit: Signer is required (an Ed25519 private key)")
	}
	if cfg.CheckpointEvery < 0 {
		return nil, fmt.Errorf("audit: CheckpointEvery is %d, want >= 0", cfg.CheckpointEvery)
	}
	if cfg.CheckpointInterval < 0 {
		return nil, fmt.Errorf("audit: CheckpointInterval is %v, want >= 0", cfg.CheckpointInterval)
	}
	l := &Log{
		store:    cfg.Store,
		signer:   cfg.Signer,
		keyID:    KeyID(cfg.Signer.Public().(ed25519.PublicKey)),
		now:      cfg.Now,
		every:    cfg.CheckpointEvery,
		interval: cfg.CheckpointInterval,
		logger:   cfg.Logger,
		head:     GenesisHash,
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.every == 0 {
		l.every = DefaultCheckpointEvery
	}
	if l.interval == 0 {
		l.interval = DefaultCheckpointInterval
	}
	if l.logger == nil {
		l.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	last, ok, err := cfg.Store.LastAudit(context.Background())
	if err != nil {
		return nil, fmt.Errorf("audit: read head: %w", err)
	}
	if ok {
		if last.ComputeHash() != last.Hash {
			return nil, fmt.Errorf("audit: record %d: stored head does not match its hash; run audit verify: %w",
				last.Seq, &TamperError{Seq: last.Seq, Reason: "hash does not match the record contents"})
		}
		l.seq, l.head = last.Seq, last.Hash
		if last.Type != CheckpointType {
			// The number of unsigned records before it is unknown without
			// a scan; one is enough to make the next checkpoint happen.
			l.unsigned = 1
		}
	}
	l.lastCheckpoint = l.now()
	return l, nil
}

// KeyID returns a short identifier of a checkpoint key, recorded in each
// checkpoint's Detail["key"] to tell keys apart after a rotation: the first 8
// bytes of the SHA-256 of the public key, in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// Head returns the Seq and Hash of the newest stored record (0 and
// GenesisHash when empty). Publishing it somewhere the store's writers cannot
// reach is what makes truncation of the log detectable.
func (l *Log) Head() (seq uint64, hash string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq, l.head
}

// Append validates e, chains it onto the head and stores it, together with a
// checkpoint if one is due. It returns only once the Store has accepted the
// record (or failed). A zero e.Time is set from the clock; every time is
// stored in UTC, truncated to the microsecond. The returned Record is what
// was stored.
//
// If ctx ends while the call is still queued, Append returns ctx's error and
// nothing is stored. Once its record has been handed to the Store, Append
// waits for the outcome regardless of ctx, so that its result is true.
func (l *Log) Append(ctx context.Context, e Event) (Record, error) {
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	if err := e.Validate(); err != nil {
		return Record{}, err
	}
	if e.Type == CheckpointType {
		return Record{}, fmt.Errorf("audit: %w: type %q is reserved", ErrInvalidEvent, e.Type)
	}
	e.Detail = maps.Clone(e.Detail)
	p := &pending{ev: e, wake: make(chan struct{}, 1)}
	if err := l.submit(ctx, p, false); err != nil {
		return Record{}, err
	}
	return p.rec, p.err
}

// Checkpoint writes a checkpoint now if any record is not yet covered by
// one. The owner may call it from a ticker; an idle log stays unchanged.
func (l *Log) Checkpoint(ctx context.Context) error {
	p := &pending{checkpoint: "manual", wake: make(chan struct{}, 1)}
	if err := l.submit(ctx, p, false); err != nil {
		return err
	}
	return p.err
}

// Close refuses further calls, waits for queued ones and writes a final
// checkpoint if any record is unsigned. It is idempotent; every call returns
// the first call's result once that call has finished.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		p := &pending{checkpoint: "close", wake: make(chan struct{}, 1)}
		if err := l.submit(context.Background(), p, true); err != nil {
			l.closeErr = err
			return
		}
		l.closeErr = p.err
	})
	return l.closeErr
}

// submit queues p and returns once p is done (its result in p.rec, p.err),
// committing batches itself whenever it is the leader. It returns an error
// only if p was never committed. force lets Close queue after closing.
func (l *Log) submit(ctx context.Context, p *pending, force bool) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed && !force {
		return ErrClosed
	}
	l.queue = append(l.queue, p)
	if !l.leading {
		l.leading = true
		p.lead = true
	}
	cancelled := ctx.Done()
	for !p.done {
		if p.lead {
			l.commitLocked(p)
			continue
		}
		l.mu.Unlock()
		select {
		case <-p.wake:
			l.mu.Lock()
		case <-cancelled:
			l.mu.Lock()
			if i := slices.Index(l.queue, p); i >= 0 {
				l.queue = slices.Delete(l.queue, i, i+1)
				if p.lead {
					p.lead = false
					l.handoffLocked()
				}
				return fmt.Errorf("audit: %w", ctx.Err())
			}
			// Already in a batch: wait for the truth.
			cancelled = nil
		}
	}
	return nil
}

// handoffLocked makes the oldest queued caller the leader, or ends leadership.
func (l *Log) handoffLocked() {
	if len(l.queue) == 0 {
		l.leading = false
		return
	}
	l.queue[0].lead = true
	signal(l.queue[0])
}

func signal(p *pending) {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// commitLocked commits one batch from the head of the queue, which starts
// with leader. It is called and returns with l.mu held, but releases it
// while hashing, signing and storing.
func (l *Log) commitLocked(leader *pending) {
	leader.lead = false
	n := min(len(l.queue), maxBatch)
	batch := slices.Clone(l.queue[:n])
	l.queue = slices.Delete(l.queue, 0, n)
	seq0, head0, unsigned0, lastCheckpoint0 := l.seq, l.head, l.unsigned, l.lastCheckpoint
	l.mu.Unlock()

	if cs, ok := l.store.(ChainStore); ok {
		l.commitChained(cs, leader, batch)
		return
	}
	var (
		c     chain
		recs  []Record
		index []int // batch[i]'s record in recs, or -1
		err   error
	)
	// Another process (supportgate admin on the same data directory) may
	// have appended since this Log read the head: the store then refuses
	// the seq, and the batch is chained again onto the stored head.
	for attempt := 0; ; attempt++ {
		c = chain{seq: seq0, head: head0, unsigned: unsigned0, lastCheckpoint: lastCheckpoint0}
		recs, index = l.extend(&c, batch)

		err = nil
		if len(recs) > 0 {
			// The batch carries other callers' records, so the leader's
			// cancellation must not decide their fate; the Store bounds the call.
			err = l.store.AppendAudit(context.Background(), recs)
			if errors.Is(err, ErrNotContiguous) && attempt < 3 {
				if last, ok, lerr := l.store.LastAudit(context.Background()); lerr == nil && ok && last.ComputeHash() == last.Hash && last.Seq > seq0 {
					seq0, head0 = last.Seq, last.Hash
					if last.Type != CheckpointType {
						unsigned0 = max(unsigned0, 1)
					}
					continue
				}
			}
			if err != nil {
				err = fmt.Errorf("audit: record %d: store: %w", recs[0].Seq, err)
				l.logger.Error("audit append failed", "first", recs[0].Seq, "count", len(recs), "err", err)
			}
		}
		break
	}

	l.mu.Lock()
	if err == nil {
		l.seq, l.head, l.unsigned, l.lastCheckpoint = c.seq, c.head, c.unsigned, c.lastCheckpoint
		for _, r := range recs {
			if r.Type == CheckpointType {
				l.logger.Debug("audit checkpoint", "seq", r.Seq, "reason", r.Detail["reason"])
			}
		}
	}
	for i, p := range batch {
		p.done = true
		p.err = err
		if err == nil && index[i] >= 0 {
			p.rec = recs[index[i]]
		}
		if p != leader {
			signal(p)
		}
	}
	l.handoffLocked()
}

// chain is the end of the chain that records are appended to.
type chain struct {
	seq            uint64
	head           string
	unsigned       int       // records after the last checkpoint
	lastCheckpoint time.Time // when the last checkpoint was signed
}

// extend chains the events of batch onto c, advancing it, and signs a
// checkpoint where one is asked for or due (every l.every records, or once
// l.interval has passed). It returns the records and, for each call of
// batch, the index of its record in them (-1 for checkpoint requests).
func (l *Log) extend(c *chain, batch []*pending) ([]Record, []int) {
	now := l.now().UTC().Truncate(time.Microsecond)
	recs := make([]Record, 0, len(batch)+1)
	index := make([]int, len(batch))
	add := func(e Event) {
		c.seq++
		r := Record{Seq: c.seq, Event: e, Prev: c.head}
		r.Hash = r.ComputeHash()
		c.head = r.Hash
		recs = append(recs, r)
	}
	checkpoint := func(reason string) {
		add(Event{
			Time:   now,
			Type:   CheckpointType,
			Actor:  SystemActor,
			Detail: map[string]string{"reason": reason, "key": l.keyID},
		})
		r := &recs[len(recs)-1]
		r.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(l.signer, checkpointMessage(r.Hash)))
		c.unsigned = 0
		c.lastCheckpoint = now
	}
	for i, p := range batch {
		index[i] = -1
		if p.checkpoint != "" {
			if c.unsigned > 0 {
				checkpoint(p.checkpoint)
			}
			continue
		}
		add(p.ev)
		index[i] = len(recs) - 1
		c.unsigned++
		if c.unsigned >= l.every {
			checkpoint("count")
		}
	}
	if c.unsigned > 0 && now.Sub(c.lastCheckpoint) >= l.interval {
		checkpoint("interval")
	}
	return recs, index
}

// build chains batch onto the newest stored record last (ok false when the
// store is empty) and returns the records and, for each call of batch, the
// index of its record in them (-1 for checkpoint requests). It runs inside
// a ChainStore's write transaction, with l.mu held, and advances the head
// at once so that the next build in the same transaction chains onto it;
// if the transaction fails, the next build finds the stored head differs
// and starts again from it.
func (l *Log) buildLocked(last Record, ok bool, batch []*pending) ([]Record, []int, error) {
	switch {
	case ok && (last.Seq != l.seq || last.Hash != l.head):
		// Another process appended, or a transaction of ours was
		// rolled back: chain onto what is stored, once it proves sound,
		// and sign at once since the unsigned count is unknown.
		if last.ComputeHash() != last.Hash {
			return nil, nil, fmt.Errorf("audit: record %d: stored head does not match its hash; run audit verify: %w",
				last.Seq, &TamperError{Seq: last.Seq, Reason: "hash does not match the record contents"})
		}
		l.seq, l.head = last.Seq, last.Hash
		if last.Type != CheckpointType {
			l.unsigned = max(l.unsigned, l.every)
		}
	case !ok && l.seq != 0:
		l.seq, l.head = 0, GenesisHash
	}
	c := chain{seq: l.seq, head: l.head, unsigned: l.unsigned, lastCheckpoint: l.lastCheckpoint}
	recs, index := l.extend(&c, batch)
	l.seq, l.head, l.unsigned, l.lastCheckpoint = c.seq, c.head, c.unsigned, c.lastCheckpoint
	return recs, index, nil
}

// commitChained is commitLocked for a ChainStore: the batch is chained
// inside the store's transaction, onto the head it holds.
func (l *Log) commitChained(cs ChainStore, leader *pending, batch []*pending) {
	var (
		recs  []Record
		index []int
	)
	err := cs.AppendChained(context.Background(), func(last Record, ok bool) ([]Record, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		var err error
		recs, index, err = l.buildLocked(last, ok, batch)
		return recs, err
	})
	if err != nil {
		err = fmt.Errorf("audit: store: %w", err)
		l.logger.Error("audit append failed", "count", len(batch), "err", err)
	}
	l.mu.Lock()
	for i, p := range batch {
		p.done = true
		p.err = err
		if err == nil && index[i] >= 0 {
			p.rec = recs[index[i]]
		}
		if p != leader {
			signal(p)
		}
	}
	l.handoffLocked()
}

// Chain prepares evs to be stored by a ChainStore in the same transaction
// as the change they report, so that the change and its audit records are
// committed together or not at all. Each event is checked and completed as
// by Append. Pass the returned ChainFunc to the store's write; the records
// are durable once that write returns nil.
func (l *Log) Chain(evs []Event) (ChainFunc, error) {
	batch := make([]*pending, len(evs))
	for i, e := range evs {
		if e.Time.IsZero() {
			e.Time = l.now()
		}
		e.Time = e.Time.UTC().Truncate(time.Microsecond)
		if err := e.Validate(); err != nil {
			return nil, err
		}
		if e.Type == CheckpointType {
			return nil, fmt.Errorf("audit: %w: type %q is reserved", ErrInvalidEvent, e.Type)
		}
		e.Detail = maps.Clone(e.Detail)
		batch[i] = &pending{ev: e}
	}
	return func(last Record, ok bool) ([]Record, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.closed {
			return nil, ErrClosed
		}
		recs, _, err := l.buildLocked(last, ok, batch)
		return recs, err
	}, nil
}
