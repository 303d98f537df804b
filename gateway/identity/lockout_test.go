package identity

import (
	"errors"
	"testing"
	"time"
)

func TestLockout(t *testing.T) {
	l := DefaultLockout
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var s LoginState
	for i := 1; i <= 4; i++ {
		s = l.Fail(s, t0.Add(time.Duration(i)*time.Minute))
		if locked, _ := l.Locked(s, t0.Add(time.Duration(i)*time.Minute)); locked {
			t.Fatalf("locked after %d failures, want unlocked until 5", i)
		}
		if s.Failures != i {
			t.Fatalf("Failures: got %d, want %d", s.Failures, i)
		}
	}
	fifth := t0.Add(5 * time.Minute)
	s = l.Fail(s, fifth)
	locked, until := l.Locked(s, fifth)
	if !locked || !until.Equal(fifth.Add(15*time.Minute)) {
		t.Fatalf("after 5 failures: got locked=%v until %v, want true until %v", locked, until, fifth.Add(15*time.Minute))
	}
	// Failing while locked does not extend the lock.
	if s2 := l.Fail(s, fifth.Add(time.Minute)); s2 != s {
		t.Errorf("Fail while locked: got %+v, want unchanged %+v", s2, s)
	}
	if locked, _ := l.Locked(s, fifth.Add(15*time.Minute-time.Nanosecond)); !locked {
		t.Error("unlocked before LockFor elapsed")
	}
	after := fifth.Add(15 * time.Minute)
	if locked, _ := l.Locked(s, after); locked {
		t.Error("still locked after LockFor")
	}
	// After the lock ends, a full set of attempts again.
	s = l.Fail(s, after)
	if s.Failures != 1 {
		t.Errorf("first failure after lock: got Failures %d, want 1", s.Failures)
	}
	if got := l.Success(s, after); got != (LoginState{}) {
		t.Errorf("Success: got %+v, want zero state", got)
	}
}

func TestLockoutWindow(t *testing.T) {
	l := Lockout{MaxFailures: 3, Window: time.Minute, LockFor: time.Hour}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := l.Fail(LoginState{}, t0)
	s = l.Fail(s, t0.Add(30*time.Second))
	s = l.Fail(s, t0.Add(2*time.Minute)) // more than Window after the previous one
	if s.Failures != 1 {
		t.Fatalf("Failures after a quiet Window: got %d, want 1", s.Failures)
	}
	if locked, _ := l.Locked(s, t0.Add(2*time.Minute)); locked {
		t.Error("locked, want the old failures forgotten")
	}
	// Zero policy fields take the defaults.
	var zero Lockout
	s = LoginState{}
	for range 5 {
		s = zero.Fail(s, t0)
	}
	if locked, until := zero.Locked(s, t0); !locked || !until.Equal(t0.Add(15*time.Minute)) {
		t.Errorf("zero Lockout: got locked=%v until %v, want 5 failures to lock for 15m", locked, until)
	}
}

func TestParseRole(t *testing.T) {
	for _, r := range Roles() {
		got, err := ParseRole(string(r))
		if err != nil || got != r {
			t.Errorf("ParseRole(%q): got %q, %v; want %q, nil", r, got, err, r)
		}
	}
	for _, s := range []string{"", "Admin", "root", "customer", " agent"} {
		if _, err := ParseRole(s); !errors.Is(err, ErrUnknownRole) {
			t.Errorf("ParseRole(%q): got %v, want ErrUnknownRole", s, err)
		}
	}
}
