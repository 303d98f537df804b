package session

import (
	"context"
	"fmt"
	"net/netip"
	"time"
)

// Handoff lets the customer who approved a session in the browser bring in
// their supportgate-assist helper, which the link's binding to the first
// client would otherwise refuse. The bound client asks for a one-time code
// (Handoff) and gives it to the helper, which trades it for a client key of
// its own (ClaimHandoff). One helper per session; the code is stored only
// as a hash, expires after HandoffTTL and works once.

// HandoffTTL is how long a handoff code can be claimed.
const HandoffTTL = 10 * time.Minute

// Handoff issues a handoff code for an active session that grants shell or
// tunnel. Only the first client (the one the link is bound to) may ask. A
// new code replaces an unclaimed one.
func (b *Broker) Handoff(ctx context.Context, token, clientKey string, by Actor) (string, *Session, error) {
	e, err := b.customerEntry(ctx, token)
	if err != nil {
		return "", nil, err
	}
	code, ch, err := newSecret(b.rand)
	if err != nil {
		return "", nil, err
	}
	s, err := b.change(ctx, e, "consent.handoff", by, nil, func(s *Session) error {
		kh, perr := ParseToken(clientKey)
		if s.ClientHash == ([32]byte{}) || perr != nil || !sameHash(kh, s.ClientHash) {
			return ErrBoundElsewhere
		}
		if s.State != Active {
			return ErrNotActive
		}
		if !s.Scopes.Has(Shell) && !s.Scopes.Has(Tunnel) {
			return fmt.Errorf("%w: the session grants neither shell nor tunnel, so there is no helper to connect", ErrScopeNotAllowed)
		}
		if s.HelperHash != ([32]byte{}) {
			return ErrHelperBound
		}
		s.HandoffHash = ch
		s.HandoffExpiresAt = b.clock.Now().Add(HandoffTTL)
		return nil
	})
	if err != nil {
		return "", nil, err
	}
	return code, s, nil
}

// ClaimHandoff binds the helper presenting a handoff code: it returns a
// fresh client key for it (set it as its cookie) and spends the code. A
// wrong, spent or expired code is ErrBoundElsewhere, as for any client the
// link is not bound to.
func (b *Broker) ClaimHandoff(ctx context.Context, token, code string, by Actor) (*Session, string, error) {
	e, err := b.customerEntry(ctx, token)
	if err != nil {
		return nil, "", err
	}
	ch, perr := ParseToken(code)
	key, kh, err := newSecret(b.rand)
	if err != nil {
		return nil, "", err
	}
	s, err := b.change(ctx, e, "consent.handoff_claimed", by, nil, func(s *Session) error {
		if perr != nil || s.HandoffHash == ([32]byte{}) || !sameHash(ch, s.HandoffHash) ||
			!b.clock.Now().Before(s.HandoffExpiresAt) {
			return ErrBoundElsewhere
		}
		if s.State != Active {
			return ErrNotActive
		}
		s.HelperHash = kh
		s.HandoffHash, s.HandoffExpiresAt = [32]byte{}, time.Time{}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return s, key, nil
}

// HelperEnrollment is the helper a device-access session enrolled with the
// gateway's WireGuard hub: public keys and the tunnel address it was given.
// Stores that keep it let a restarted gateway take the tunnel back.
type HelperEnrollment struct {
	SessionID    string
	WireGuardKey [32]byte   // the helper's Curve25519 public key
	SSHHostKey   string     // its SSH host key, authorized_keys form
	Address      netip.Addr // its tunnel address
	At           time.Time  // when it enrolled
}
