package gateway

import (
	"sync"
	"time"

	"supportgate/gateway/identity"
)

// maxGhosts bounds the names ghostLocks remembers.
const maxGhosts = 10_000

// ghostLocks counts failed logins to names that cannot sign in (no such
// account, not enrolled yet, or disabled by an administrator) under the
// same lockout policy as real accounts, so that repeated guesses get the
// same answers whatever the name: 401 for the first failures, then the
// lockout's 429 until it lapses. Without it, five wrong guesses would lock
// a real account and not an unknown name, and the sixth answer would tell
// which user names exist.
//
// The counts live in memory: a restart forgets them, where a real
// account's lock is stored. Past maxGhosts names, those whose failures no
// longer count (the window passed, no lock) go first, then the unlocked
// ones; a name that cannot be remembered is answered as a first failure.
type ghostLocks struct {
	mu    sync.Mutex // guards names
	names map[string]identity.LoginState
}

func newGhostLocks() *ghostLocks {
	return &ghostLocks{names: map[string]identity.LoginState{}}
}

// locked reports whether name is locked at now under l, and until when.
func (g *ghostLocks) locked(l identity.Lockout, name string, now time.Time) (bool, time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return l.Locked(g.names[name], now)
}

// fail counts a failed login to name at now under l, and reports
// whether this failure locked the name, and until when.
func (g *ghostLocks) fail(l identity.Lockout, name string, now time.Time) (bool, time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	st, ok := g.names[name]
	if !ok && len(g.names) >= maxGhosts {
		g.pruneLocked(l, now)
		if len(g.names) >= maxGhosts {
			return false, time.Time{}
		}
	}
	next := l.Fail(st, now)
	g.names[name] = next
	if was, _ := l.Locked(st, now); was {
		return false, time.Time{}
	}
	return l.Locked(next, now)
}

// pruneLocked drops the names whose failures no longer count and, if that
// is not enough, every name that is not locked.
func (g *ghostLocks) pruneLocked(l identity.Lockout, now time.Time) {
	window := l.Window
	if window <= 0 {
		window = identity.DefaultLockout.Window
	}
	for name, st := range g.names {
		if locked, _ := l.Locked(st, now); !locked && now.Sub(st.LastFailure) > window {
			delete(g.names, name)
		}
	}
	if len(g.names) < maxGhosts {
		return
	}
	for name, st := range g.names {
		if locked, _ := l.Locked(st, now); !locked {
			delete(g.names, name)
		}
	}
}
