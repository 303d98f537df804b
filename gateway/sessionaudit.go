package gateway

import (
	"context"
	"maps"

	"supportgate/gateway/audit"
	"supportgate/session"
)

// chainedSessionStore is a store that commits audit records in the same
// transaction as a session change. The SQLite store is one.
type chainedSessionStore interface {
	CreateSessionChained(ctx context.Context, s *session.Session, chain audit.ChainFunc) error
	UpdateSessionsChained(ctx context.Context, cs []session.Change, chain audit.ChainFunc) error
}

var _ chainedSessionStore = (interface {
	Store
	chainedSessionStore
})(nil)

// auditedSessions is the session.Store the Broker writes through: every
// state change is committed together with its audit record, so a change
// is never stored unaudited, and the record is durable before the Broker
// returns (and so before the API answers). Over a store without
// transactions of that kind, the record is appended right after the
// change instead.
type auditedSessions struct {
	session.Store
	chained chainedSessionStore // nil: record after the change
	log     *audit.Log          // chains the records of a chained store
	// record appends a record after the change, over a store that is not
	// chained; recorded reports each record once stored (Gateway.record
	// and Gateway.recorded for the gateway's broker).
	record   func(context.Context, audit.Event)
	recorded func(audit.Record)
}

func newAuditedSessions(st session.Store, log *audit.Log, record func(context.Context, audit.Event), recorded func(audit.Record)) *auditedSessions {
	c, _ := st.(chainedSessionStore)
	return &auditedSessions{Store: st, chained: c, log: log, record: record, recorded: recorded}
}

// CreateSession implements session.Store.
func (a *auditedSessions) CreateSession(ctx context.Context, c session.Change) error {
	if a.chained == nil {
		if err := a.Store.CreateSession(ctx, c); err != nil {
			return err
		}
		a.record(ctx, sessionAuditEvent(c.Event, c.Session))
		return nil
	}
	chain, stored, err := a.chain([]audit.Event{sessionAuditEvent(c.Event, c.Session)})
	if err != nil {
		return err
	}
	if err := a.chained.CreateSessionChained(ctx, c.Session, chain); err != nil {
		return err
	}
	stored()
	return nil
}

// UpdateSessions implements session.Store.
func (a *auditedSessions) UpdateSessions(ctx context.Context, cs ...session.Change) error {
	if a.chained == nil {
		if err := a.Store.UpdateSessions(ctx, cs...); err != nil {
			return err
		}
		for _, c := range cs {
			a.record(ctx, sessionAuditEvent(c.Event, c.Session))
		}
		return nil
	}
	evs := make([]audit.Event, len(cs))
	for i, c := range cs {
		evs[i] = sessionAuditEvent(c.Event, c.Session)
	}
	chain, stored, err := a.chain(evs)
	if err != nil {
		return err
	}
	if err := a.chained.UpdateSessionsChained(ctx, cs, chain); err != nil {
		return err
	}
	stored()
	return nil
}

// chain returns the audit.ChainFunc for evs and a function to call once
// the store committed, which reports the stored records like record does.
func (a *auditedSessions) chain(evs []audit.Event) (audit.ChainFunc, func(), error) {
	chain, err := a.log.Chain(evs)
	if err != nil {
		return nil, nil, err
	}
	var recs []audit.Record
	capture := func(last audit.Record, ok bool) ([]audit.Record, error) {
		var err error
		recs, err = chain(last, ok)
		return recs, err
	}
	stored := func() {
		for _, r := range recs {
			if r.Type != audit.CheckpointType {
				a.recorded(r)
			}
		}
	}
	return capture, stored, nil
}

// sessionAuditEvent is the audit record of a broker event about s.
func sessionAuditEvent(e session.Event, s *session.Session) audit.Event {
	detail := make(map[string]string, len(e.Detail)+2)
	maps.Copy(detail, e.Detail)
	detail["agent"] = s.Agent
	if e.Type == "session.created" {
		detail["customer"] = s.Customer
	}
	return audit.Event{
		Time: e.Time, Type: e.Type, Actor: e.Actor.Name, Role: e.Actor.Role,
		Session: s.ID, Remote: e.Actor.Remote, Detail: detail,
	}
}
