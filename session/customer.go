package session

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The customer side of a session: everything here is reached with the
// consent token from the link, and, once the link is bound, the client key
// of the first client that opened it.

// Open is the customer's first look at a consent link. The first client to
// open an unended link binds it: Open returns a fresh client key (set it as
// a cookie) and stores only its hash. Later calls must present that key;
// any other client gets ErrBoundElsewhere. A malformed or unknown token is
// ErrNotFound. Ended sessions are returned (the page says why) but never
// bound.
func (b *Broker) Open(ctx context.Context, token, clientKey string, by Actor) (*Session, string, error) {
	th, e, err := b.tokenEntry(token)
	if err != nil {
		return nil, "", err
	}
	if e == nil {
		s, err := b.endedByToken(ctx, th)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil, "", ErrNotFound
			}
			return nil, "", err
		}
		if err := checkClient(s, clientKey); err != nil {
			return nil, "", err
		}
		return s, "", nil
	}

	e.mu.Lock()
	s := e.s
	if s.State == Requested && !b.clock.Now().Before(s.ConsentExpiresAt) {
		e.mu.Unlock()
		b.sweep()
		s, err := b.Get(ctx, s.ID)
		return s, "", err
	}
	if s.ClientHash != ([32]byte{}) {
		err := checkClient(s, clientKey)
		out := s.Clone()
		e.mu.Unlock()
		if err != nil {
			b.emit("consent.refused", by, out, map[string]string{"why": "link bound to another client"})
			return nil, "", err
		}
		return out, "", nil
	}
	e.mu.Unlock()

	key, kh, err := newSecret(b.rand)
	if err != nil {
		return nil, "", err
	}
	out, err := b.change(ctx, e, "consent.viewed", by, nil, func(s *Session) error {
		if s.ClientHash != ([32]byte{}) {
			return ErrBoundElsewhere // another client won the race
		}
		s.ClientHash = kh
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return out, key, nil
}

// checkClient verifies that clientKey is the key the link is bound to, or
// the key of the helper bound through a handoff.
func checkClient(s *Session, clientKey string) error {
	if s.ClientHash == ([32]byte{}) {
		return nil
	}
	kh, err := ParseToken(clientKey)
	if err != nil {
		return ErrBoundElsewhere
	}
	first := sameHash(kh, s.ClientHash)
	helper := s.HelperHash != ([32]byte{}) && sameHash(kh, s.HelperHash)
	if !first && !helper {
		return ErrBoundElsewhere
	}
	return nil
}

// Peek returns a copy of the session of a consent token without binding
// the link or checking the client: for checks the gateway makes before it
// acts on a customer's request (who the session's agent is). A malformed
// or unknown token is ErrNotFound.
func (b *Broker) Peek(ctx context.Context, token string) (*Session, error) {
	th, e, err := b.tokenEntry(token)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return b.endedByToken(ctx, th)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.s.Clone(), nil
}

// tokenEntry parses a consent token and finds the entry of its open
// session: nil when the session is not open (ended, or unknown). A
// malformed token is ErrNotFound.
func (b *Broker) tokenEntry(token string) ([32]byte, *entry, error) {
	th, err := ParseToken(token)
	if err != nil {
		return th, nil, ErrNotFound
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return th, b.byToken[th], nil
}

// customerEntry finds the open session of a consent token. The binding is
// checked inside each transition, under the session's lock.
func (b *Broker) customerEntry(ctx context.Context, token string) (*entry, error) {
	th, e, err := b.tokenEntry(token)
	if err != nil {
		return nil, err
	}
	if e != nil {
		return e, nil
	}
	if _, err := b.endedByToken(ctx, th); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	return nil, ErrEnded
}

// Approve grants the session with the scopes the customer left ticked. They
// must lie within what the agent asked; policy may narrow them further. The
// time box starts now. A link is approvable once: a second Approve fails
// with ErrNotRequested.
func (b *Broker) Approve(ctx context.Context, token, clientKey string, scopes Scopes, by Actor) (*Session, error) {
	e, err := b.customerEntry(ctx, token)
	if err != nil {
		return nil, err
	}
	var granted Scopes
	detail := map[string]string{}
	return b.change(ctx, e, "session.approved", by, detail, func(s *Session) error {
		if s.ClientHash == ([32]byte{}) {
			return fmt.Errorf("%w: open the link before approving", ErrBoundElsewhere)
		}
		if err := checkClient(s, clientKey); err != nil {
			return err
		}
		if s.State != Requested {
			return ErrNotRequested
		}
		now := b.clock.Now()
		if !now.Before(s.ConsentExpiresAt) {
			return ErrLinkExpired
		}
		if len(scopes) == 0 {
			return fmt.Errorf("%w: approve at least one scope, or deny", ErrBadScope)
		}
		if !scopes.Within(s.Requested) {
			return fmt.Errorf("%w: the customer may only narrow what was asked (%s)", ErrScopeNotAllowed, s.Requested)
		}
		granted = b.policy.grant(scopes)
		if len(granted) == 0 {
			return fmt.Errorf("%w: policy allows none of the approved scopes", ErrScopeNotAllowed)
		}
		s.State = Active
		s.Scopes = granted
		s.ApprovedAt = now
		s.ExpiresAt = now.Add(s.Duration)
		s.LastActivity = now
		detail["requested"] = s.Requested.String()
		detail["approved"] = scopes.String()
		detail["granted"] = granted.String()
		detail["expires_at"] = s.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z07:00")
		return nil
	})
}

// Deny ends a session awaiting consent.
func (b *Broker) Deny(ctx context.Context, token, clientKey string, by Actor) (*Session, error) {
	e, err := b.customerEntry(ctx, token)
	if err != nil {
		return nil, err
	}
	return b.change(ctx, e, "session.ended", by, map[string]string{"reason": string(EndDenied)}, func(s *Session) error {
		if err := checkClient(s, clientKey); err != nil {
			return err
		}
		if s.State != Requested {
			return ErrNotRequested
		}
		endState(s, EndDenied, "customer", b.clock.Now())
		return nil
	})
}

// CustomerRevoke is the customer's Stop button: it ends the session at
// once, whatever its state.
func (b *Broker) CustomerRevoke(ctx context.Context, token, clientKey string, by Actor) (*Session, error) {
	e, err := b.customerEntry(ctx, token)
	if err != nil {
		return nil, err
	}
	detail := map[string]string{}
	return b.change(ctx, e, "session.ended", by, detail, func(s *Session) error {
		if err := checkClient(s, clientKey); err != nil {
			return err
		}
		r := EndRevoked
		if s.State == Requested {
			r = EndDenied
		}
		detail["reason"] = string(r)
		endState(s, r, "customer", b.clock.Now())
		return nil
	})
}

// ExtensionAnswer is the customer's answer to a pending extension. By and
// RequestedAt name the request the customer was shown (the consent view
// carries both); each one set must match the request pending now, so that
// a yes never grants an amount the customer did not see, even if the
// pending request changed between showing and answering. Zero means the
// client did not say; the answer then concerns whatever is pending, which
// is safe only because a pending request cannot be replaced.
type ExtensionAnswer struct {
	Approve     bool
	By          time.Duration
	RequestedAt time.Time
}

// DecideExtension is the customer's answer to a pending extension. On yes
// the time box grows by the requested amount from its current end. An
// answer naming another request than the pending one fails with
// ErrExtensionChanged and changes nothing.
func (b *Broker) DecideExtension(ctx context.Context, token, clientKey string, a ExtensionAnswer, by Actor) (*Session, error) {
	e, err := b.customerEntry(ctx, token)
	if err != nil {
		return nil, err
	}
	typ := "extension.denied"
	if a.Approve {
		typ = "extension.approved"
	}
	detail := map[string]string{}
	return b.change(ctx, e, typ, by, detail, func(s *Session) error {
		if err := checkClient(s, clientKey); err != nil {
			return err
		}
		if s.State != Active {
			return ErrNotActive
		}
		x := s.Extension
		if x == nil {
			return ErrNoExtension
		}
		// A refusal is checked too, so the audit record names the request
		// the customer actually refused.
		if (a.By != 0 && a.By != x.By) || (!a.RequestedAt.IsZero() && !a.RequestedAt.Equal(x.RequestedAt)) {
			return fmt.Errorf("%w: %v asked at %s is pending now; look at it again before answering",
				ErrExtensionChanged, x.By, x.RequestedAt.UTC().Format(time.RFC3339))
		}
		detail["by"] = x.By.String()
		if a.Approve {
			s.ExpiresAt = s.ExpiresAt.Add(x.By)
			detail["expires_at"] = s.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z07:00")
		}
		s.Extension = nil
		return nil
	})
}
