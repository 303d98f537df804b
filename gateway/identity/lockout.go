package identity

import "time"

// Lockout is the account lockout policy as pure functions over a LoginState,
// which the caller stores per account. A failed password or a failed TOTP
// code both count as a failure; a success resets the state.
//
// A zero field takes its default from DefaultLockout.
type Lockout struct {
	// MaxFailures is the number of consecutive failures that locks the
	// account (default 5).
	MaxFailures int
	// Window is how long a failure is remembered: a failure more than Window
	// after the previous one starts the count again (default 15m).
	Window time.Duration
	// LockFor is how long the account stays locked (default 15m).
	LockFor time.Duration
}

// DefaultLockout is DESIGN.md's policy: 5 failures lock the account for 15 min.
var DefaultLockout = Lockout{MaxFailures: 5, Window: 15 * time.Minute, LockFor: 15 * time.Minute}

// LoginState is one account's lockout bookkeeping. The zero value is a clean
// account.
type LoginState struct {
	// Failures counts consecutive failures since the last success, lock or
	// expiry of the window.
	Failures int
	// LastFailure is the time of the most recent counted failure.
	LastFailure time.Time
	// LockedUntil is when the current lock ends; zero when never locked.
	LockedUntil time.Time
}

func (l Lockout) withDefaults() Lockout {
	if l.MaxFailures <= 0 {
		l.MaxFailures = DefaultLockout.MaxFailures
	}
	if l.Window <= 0 {
		l.Window = DefaultLockout.Window
	}
	if l.LockFor <= 0 {
		l.LockFor = DefaultLockout.LockFor
	}
	return l
}

// Fail records a failed attempt at now and returns the new state. The
// failure that reaches MaxFailures locks the account until now+LockFor and
// clears the count, so the account gets MaxFailures fresh attempts once the
// lock ends. A failure while locked changes nothing: callers refuse locked
// accounts before checking credentials, and an attacker who keeps guessing
// must not be able to extend the lock forever.
func (l Lockout) Fail(state LoginState, now time.Time) LoginState {
	l = l.withDefaults()
	if locked, _ := l.Locked(state, now); locked {
		return state
	}
	if state.Failures > 0 && now.Sub(state.LastFailure) > l.Window {
		state.Failures = 0
	}
	state.Failures++
	state.LastFailure = now
	if state.Failures >= l.MaxFailures {
		state.Failures = 0
		state.LockedUntil = now.Add(l.LockFor)
	}
	return state
}

// Locked reports whether the account is locked at now and, if so, until when.
func (l Lockout) Locked(state LoginState, now time.Time) (bool, time.Time) {
	if now.Before(state.LockedUntil) {
		return true, state.LockedUntil
	}
	return false, time.Time{}
}

// Success records a successful login and returns the clean state. Callers
// check Locked first: a correct password does not lift a lock.
func (l Lockout) Success(state LoginState, now time.Time) LoginState {
	return LoginState{}
}
