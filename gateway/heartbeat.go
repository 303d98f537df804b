package gateway

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"supportgate/session"
)

// HeartbeatInterval is how often a running gateway stores the time it has
// reached (session.HighWaterStore.SetHeartbeat), and it stores it once more
// when it stops. A restarted gateway's clock starts no earlier than the
// newest stored time (cmd/supportgate steadyClock), so after a kill
// (SIGKILL, a crash, power lost) with the wall clock set back meanwhile,
// no deadline runs longer than it would have, in real time, by more than
// the downtime plus this interval. Each beat updates one row in place.
const HeartbeatInterval = 30 * time.Second

// heartbeatTimeout bounds one heartbeat's write.
const heartbeatTimeout = 10 * time.Second

// heartbeat stores the gateway clock's time every HeartbeatInterval, on
// the clock's timers (a fake clock in tests fires them as it advances).
type heartbeat struct {
	store session.HighWaterStore
	clock session.Clock
	log   *slog.Logger

	mu      sync.Mutex    // guards the fields below
	timer   session.Timer // the next beat, nil when none is pending
	started bool
	stopped bool
	beats   sync.WaitGroup // the pending or running beat
}

// start arms the first beat.
func (h *heartbeat) start() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.started = true
	h.armLocked()
}

func (h *heartbeat) armLocked() {
	if h.stopped {
		return
	}
	h.beats.Add(1)
	h.timer = h.clock.AfterFunc(HeartbeatInterval, func() {
		defer h.beats.Done()
		h.beat()
		h.mu.Lock()
		h.timer = nil
		h.armLocked()
		h.mu.Unlock()
	})
}

// beat stores the clock's time; a failure is logged, and the next beat
// tries again.
func (h *heartbeat) beat() {
	ctx, cancel := context.WithTimeout(context.Background(), heartbeatTimeout)
	defer cancel()
	if err := h.store.SetHeartbeat(ctx, h.clock.Now()); err != nil {
		h.log.Error("storing the heartbeat", "err", err)
	}
}

// stop cancels the pending beat and waits for a running one. It reports
// whether the heartbeat had started and was not stopped before, for the
// caller to store the last beat once it stopped everything else.
func (h *heartbeat) stop() bool {
	h.mu.Lock()
	was := h.started && !h.stopped
	h.stopped = true
	if h.timer != nil && h.timer.Stop() {
		h.beats.Done()
	}
	h.timer = nil
	h.mu.Unlock()
	h.beats.Wait()
	return was
}
