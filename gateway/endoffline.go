package gateway

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"supportgate/gateway/audit"
	"supportgate/session"
)

// OfflineEnd says which sessions EndOpenSessions ends and how.
type OfflineEnd struct {
	Store Store      // required: a stopped gateway's store
	Audit *audit.Log // required: the audit log over Store, which writes the records
	// RecordingsDir is where the gateway keeps recordings (RecordingsDir
	// in its data directory): an active session's recording that a crash
	// left without its end is audited as cut short, as the next start
	// would have done. Empty skips that.
	RecordingsDir string
	At            time.Time     // required: the time the sessions end at
	By            session.Actor // who ends them
	Logger        *slog.Logger  // nil discards
}

// EndOpenSessions ends every session c.Store holds open, requested or
// active, as a revoke does online: state ended, reason revoked, each
// change committed with its session.ended audit record through the same
// audited store the gateway's broker writes through, so the audit chain
// reads as it would had c.By revoked them one by one. It is for the data
// directory of a stopped gateway (`supportgate admin clock reset
// --end-sessions`), whose serve must not run meanwhile. It returns the
// sessions it ended; a session whose end failed to store stays open and is
// named in the error.
func EndOpenSessions(ctx context.Context, c OfflineEnd) ([]*session.Session, error) {
	switch {
	case c.Store == nil:
		return nil, errors.New("gateway: OfflineEnd.Store is required")
	case c.Audit == nil:
		return nil, errors.New("gateway: OfflineEnd.Audit is required")
	case c.At.IsZero():
		return nil, errors.New("gateway: OfflineEnd.At is required")
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var auditErrs []error
	record := func(ctx context.Context, e audit.Event) {
		if _, err := c.Audit.Append(context.WithoutCancel(ctx), e); err != nil {
			auditErrs = append(auditErrs, err)
		}
	}
	sessions := newAuditedSessions(c.Store, c.Audit, record, func(audit.Record) {})
	b, err := session.NewBroker(session.Config{Store: sessions, Clock: stoppedClock{c.At}, Logger: log})
	if err != nil {
		return nil, err
	}
	defer b.Close()
	ended, err := b.EndStored(ctx, session.EndRevoked, c.By)
	if c.RecordingsDir != "" {
		var wasActive []*session.Session
		for _, s := range ended {
			if !s.ApprovedAt.IsZero() {
				wasActive = append(wasActive, s)
			}
		}
		flagCutShort(ctx, c.RecordingsDir, wasActive, record, log)
	}
	return ended, errors.Join(append([]error{err}, auditErrs...)...)
}

// stoppedClock reads one instant and never moves: EndOpenSessions's
// broker ends every session at it and arms no timer.
type stoppedClock struct{ at time.Time }

func (c stoppedClock) Now() time.Time                                  { return c.at }
func (stoppedClock) Monotonic() time.Duration                          { return 0 }
func (stoppedClock) AfterFunc(d time.Duration, f func()) session.Timer { return time.AfterFunc(d, f) }
