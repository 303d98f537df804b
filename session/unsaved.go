package session

import (
	"context"
	"errors"
	"time"
)

// Ends that could not be stored.
//
// A session ends in the broker first: its context is cancelled, its
// channels close and Authorize refuses it from then on. Storing the end
// can still fail (a full disk, the database locked by a backup). The
// session must not then come back: the store still says it is open, and a
// restarted gateway would load it as such, giving an agent back access the
// customer took away. So the broker keeps such ends (unsaved), shows them
// in Get and List, and stores them again with a growing delay until it
// works. Close tries once more and logs each end it still could not store.

const (
	// unsavedFirstRetry is the delay before the first new attempt, which
	// doubles after each failed round up to unsavedMaxRetry.
	unsavedFirstRetry = time.Second
	unsavedMaxRetry   = 30 * time.Second
	// unsavedStoreTimeout bounds one round of attempts.
	unsavedStoreTimeout = 30 * time.Second
)

// keepUnsaved holds c, whose end could not be stored, and arms a retry.
// It takes b.mu: the caller must hold no entry's lock.
func (b *Broker) keepUnsaved(c Change) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.keepUnsavedLocked(c)
}

func (b *Broker) keepUnsavedLocked(c Change) {
	if b.unsavedFinal {
		// Close has made its last attempt already: say so now, as it
		// would have.
		b.log.Error("session ended but its end is not stored: it will be open again after a restart; end it then",
			"session", c.Session.ID, "reason", string(c.Session.EndReason), "ended_by", c.Session.EndedBy)
		return
	}
	if b.unsaved == nil {
		b.unsaved = make(map[string]Change)
	}
	b.unsaved[c.Session.ID] = c
	b.armRetryLocked()
}

// armRetryLocked schedules retryUnsaved unless one is pending or the
// broker is closed.
func (b *Broker) armRetryLocked() {
	if b.closed || b.retryTimer != nil || len(b.unsaved) == 0 {
		return
	}
	if b.retryDelay == 0 {
		b.retryDelay = unsavedFirstRetry
	}
	b.sweeps.Add(1)
	b.retryTimer = b.clock.AfterFunc(b.retryDelay, func() {
		defer b.sweeps.Done()
		b.mu.Lock()
		b.retryTimer = nil
		b.mu.Unlock()
		b.storeUnsaved()
		b.mu.Lock()
		defer b.mu.Unlock()
		if len(b.unsaved) == 0 {
			b.retryDelay = 0
			return
		}
		b.retryDelay = min(2*b.retryDelay, unsavedMaxRetry)
		b.armRetryLocked()
	})
}

// storeUnsaved tries to store every held end once and forgets those
// stored. One the store already holds a later version of (ErrConflict) or
// no longer holds (ErrNotFound) is forgotten too: nothing is left to do
// for it here.
func (b *Broker) storeUnsaved() {
	b.mu.Lock()
	pending := make([]Change, 0, len(b.unsaved))
	for _, c := range b.unsaved {
		pending = append(pending, c)
	}
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), unsavedStoreTimeout)
	defer cancel()
	for _, c := range pending {
		err := b.store.UpdateSessions(ctx, c)
		switch {
		case err == nil:
			b.log.Info("session end stored after a failure", "session", c.Session.ID, "reason", string(c.Session.EndReason))
		case errors.Is(err, ErrConflict), errors.Is(err, ErrNotFound):
			b.log.Warn("session end not stored: the store changed meanwhile", "session", c.Session.ID, "err", err)
		default:
			b.log.Error("session end still not stored; retrying", "session", c.Session.ID, "err", err)
			continue
		}
		b.mu.Lock()
		delete(b.unsaved, c.Session.ID)
		b.mu.Unlock()
	}
}

// unsavedEnd returns the held end of session id, if any.
func (b *Broker) unsavedEnd(id string) (*Session, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.unsaved[id]
	if !ok {
		return nil, false
	}
	return c.Session.Clone(), true
}

// endedByToken returns the session of consent token hash th that is not
// open here: its held end if storing that failed, as the store does not
// have it yet, or else the stored session.
func (b *Broker) endedByToken(ctx context.Context, th [32]byte) (*Session, error) {
	b.mu.Lock()
	for _, c := range b.unsaved {
		if c.Session.TokenHash == th {
			s := c.Session.Clone()
			b.mu.Unlock()
			return s, nil
		}
	}
	b.mu.Unlock()
	return b.store.SessionByToken(ctx, th)
}

// UnsavedEnds returns how many ended sessions the store still holds as
// open because storing their end failed. While it is not zero the gateway
// is unhealthy: a restart would bring those sessions back.
func (b *Broker) UnsavedEnds() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.unsaved)
}

// closeUnsaved, at Close, tries once more to store the held ends and logs
// each one it could not: after a restart that session is open again and
// must be ended by hand.
func (b *Broker) closeUnsaved() {
	b.storeUnsaved()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.unsavedFinal = true // an end failing from now on is logged at once
	for id, c := range b.unsaved {
		b.log.Error("session ended but its end is not stored: it will be open again after a restart; end it then",
			"session", id, "reason", string(c.Session.EndReason), "ended_by", c.Session.EndedBy)
	}
}
