package session

import (
	"context"
	"time"
)

// armLocked makes sure a timer is set for the earliest deadline. A timer
// whose callback is already running re-arms when its sweep finishes.
func (b *Broker) armLocked() {
	if b.closed {
		return
	}
	at, ok := b.sched.next()
	if !ok {
		return
	}
	if b.timer != nil {
		if !at.Before(b.timerAt) {
			return
		}
		if !b.timer.Stop() {
			return // firing now; its sweep re-arms for at
		}
		b.sweeps.Done()
	}
	b.timerGen++
	gen := b.timerGen
	b.timerAt = at
	b.sweeps.Add(1)
	b.timer = b.clock.AfterFunc(max(at.Sub(b.clock.Now()), 0), func() {
		defer b.sweeps.Done()
		b.mu.Lock()
		if b.timerGen == gen {
			b.timer = nil
		}
		b.mu.Unlock()
		b.sweep()
	})
}

// sweepBatch is how many ended sessions one store call writes.
const sweepBatch = 256

// sweep ends every open session whose deadline has passed: consent links
// that nobody approved, time boxes that ran out and idle sessions. Every
// due session's context is cancelled before anything is stored, so the
// channels close first; storing and auditing follow in batches.
func (b *Broker) sweep() {
	now := b.clock.Now()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	var due []*entry
	seen := map[string]bool{}
	for _, id := range b.sched.popDue(now) {
		if e := b.entries[id]; e != nil && !seen[id] {
			seen[id] = true
			due = append(due, e)
		}
	}
	b.mu.Unlock()

	var ended, before []*Session // before[i] is ended[i] as last stored
	var later []deadlineItem
	for _, e := range due {
		e.mu.Lock()
		s := e.s
		if s.State == Ended {
			e.mu.Unlock()
			continue
		}
		if dl := s.deadline(); now.Before(dl) {
			later = append(later, deadlineItem{at: dl, id: s.ID}) // touched or extended
			e.mu.Unlock()
			continue
		}
		next := s.Clone()
		reason := EndLinkExpired
		if s.State == Active {
			reason = EndExpired
			if now.Before(s.ExpiresAt) {
				reason = EndIdle
			}
		}
		endState(next, reason, System.Name, now)
		next.Version++
		e.cancel(&EndedError{Reason: reason})
		e.s = next
		e.mu.Unlock()
		ended, before = append(ended, next), append(before, s)
	}

	b.mu.Lock()
	for _, s := range ended {
		b.removeLocked(s)
	}
	for _, it := range later {
		b.sched.add(it.at, it.id)
	}
	b.armLocked()
	b.mu.Unlock()

	changes := make([]Change, len(ended))
	for i, s := range ended {
		changes[i] = Change{Session: s.Clone(), Before: before[i],
			Event: b.event("session.ended", System, map[string]string{"reason": string(s.EndReason)})}
	}
	b.storeEnded(changes)
	for _, c := range changes {
		b.publish(c.Event, c.Session)
	}
}

// storeEnded writes sessions ended by the timers. A failed batch is retried
// one session at a time so one bad row cannot keep the others active in
// the store; what still fails is kept and stored again later (unsaved.go):
// a session ended idle would otherwise start a fresh idle period after a
// restart.
func (b *Broker) storeEnded(ended []Change) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(ended) > 0 {
		n := min(len(ended), sweepBatch)
		batch := ended[:n]
		ended = ended[n:]
		if err := b.store.UpdateSessions(ctx, batch...); err == nil {
			continue
		}
		for _, c := range batch {
			if err := b.store.UpdateSessions(ctx, c); err != nil {
				b.log.Error("session end not stored; retrying", "session", c.Session.ID, "err", err)
				b.keepUnsaved(c)
			}
		}
	}
}
