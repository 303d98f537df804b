package sessiontest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"supportgate/session"
)

// RunStoreTests checks that a session.Store keeps the contract of that
// interface. newStore must return an empty store for each call; the suite
// closes nothing, so newStore registers its own cleanup with t.Cleanup.
//
// Beyond the interface comments, the suite pins down what callers rely on:
//
//   - every field of a Session round trips: scopes with their tunnel ports,
//     durations, both hashes, Extension nil and set, and times to at least
//     the microsecond (the suite uses microseconds so that PostgreSQL's
//     timestamptz passes). A time given in UTC comes back in UTC, one in
//     another zone as the same instant; a zero time comes back zero. A nil
//     and an empty Scopes are equivalent.
//   - a store keeps its own copy: changing a session after CreateSession or
//     after reading it changes nothing stored.
//   - UpdateSessions of a missing session fails with session.ErrNotFound and
//     stores nothing; an empty call is a no-op.
//   - a Change with Before (the session at the previous version) stores the
//     whole change, whichever fields differ, and LastActivity even when
//     Before already carries it (the Broker moves it in memory); a stale
//     version still fails with ErrConflict.
//   - ListSessions orders by CreatedAt, newest first, ties by ID descending;
//     a Limit of zero or below, or above session.MaxList, means MaxList;
//     Filter.After pages through that order without gaps or repeats.
func RunStoreTests(t *testing.T, newStore func(t *testing.T) session.Store) {
	t.Helper()
	tests := []struct {
		name string
		f    func(t *testing.T, st session.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"RoundTripMinimal", testRoundTripMinimal},
		{"CopiesOnWrite", testCopies},
		{"DuplicateID", testDuplicateID},
		{"DuplicateToken", testDuplicateToken},
		{"NotFound", testNotFound},
		{"Update", testUpdate},
		{"UpdateConflict", testUpdateConflict},
		{"UpdateWithBefore", testUpdateWithBefore},
		{"UpdateBatchAllOrNothing", testUpdateBatch},
		{"UpdateEmpty", testUpdateEmpty},
		{"SessionByToken", testSessionByToken},
		{"ListFilters", testListFilters},
		{"ListCap", testListCap},
		{"OpenSessions", testOpenSessions},
		{"ConcurrentDistinct", testConcurrentDistinct},
		{"ConcurrentSame", testConcurrentSame},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.f(t, newStore(t)) })
	}
}

// base is a fixed instant with sub-second (microsecond) precision.
var base = time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC)

func hashOf(b byte) [32]byte {
	var h [32]byte
	for i := range h {
		h[i] = b ^ byte(i*7)
	}
	h[0] = b // keep distinct inputs distinct
	h[31] = 0
	return h
}

func mustScopes(t *testing.T, text string) session.Scopes {
	t.Helper()
	s, err := session.ParseScopes(text)
	if err != nil {
		t.Fatalf("ParseScopes(%q): %v", text, err)
	}
	return s
}

// full returns a session with every field set to a non-zero value.
func full(t *testing.T, id string, n byte) *session.Session {
	t.Helper()
	return &session.Session{
		ID:               id,
		Agent:            "alice",
		AgentName:        "Alice Ångström",
		Team:             "tier2",
		Customer:         "ACME Corp, ticket #42 'quoted' \"too\"",
		Reason:           "printer on fire\nsecond line",
		Requested:        mustScopes(t, "view,chat,shell,tunnel:8080,22,443,files"),
		Scopes:           mustScopes(t, "view,tunnel:443,22"),
		Duration:         30*time.Minute + 1500*time.Millisecond + 7,
		State:            session.Active,
		EndReason:        session.EndRevoked,
		EndedBy:          "customer",
		CreatedAt:        base,
		ConsentExpiresAt: base.Add(15 * time.Minute),
		ApprovedAt:       base.Add(2*time.Minute + 123456*time.Microsecond),
		ExpiresAt:        base.Add(32*time.Minute + 1*time.Microsecond),
		EndedAt:          base.Add(40 * time.Minute),
		LastActivity:     base.Add(3*time.Minute + 999999*time.Microsecond),
		IdleTimeout:      10*time.Minute + 3,
		VerificationCode: "042917",
		TokenHash:        hashOf(n),
		ClientHash:       hashOf(n + 128),
		HelperHash:       hashOf(n + 64),
		HandoffHash:      hashOf(n + 32),
		HandoffExpiresAt: base.Add(12*time.Minute + 7*time.Microsecond),
		Extension: &session.Extension{
			By:          15*time.Minute + 11,
			RequestedBy: "alice",
			RequestedAt: base.Add(20*time.Minute + 1*time.Microsecond),
		},
		Version: 1,
	}
}

// minimal returns a freshly requested session: most fields zero.
func minimal(id string, n byte, created time.Time) *session.Session {
	return &session.Session{
		ID:               id,
		Agent:            "bob",
		State:            session.Requested,
		Requested:        session.Scopes{{Kind: session.View}},
		CreatedAt:        created,
		ConsentExpiresAt: created.Add(15 * time.Minute),
		TokenHash:        hashOf(n),
		Version:          1,
	}
}

// diff reports every field of got that differs from want, by name. Times
// must be the same instant, and in UTC when want is; nil and empty Scopes
// are equal.
func diff(got, want *session.Session) []string {
	if got == nil || want == nil {
		if got != want {
			return []string{fmt.Sprintf("session: got %v, want %v", got, want)}
		}
		return nil
	}
	var out []string
	gv, wv := reflect.ValueOf(*got), reflect.ValueOf(*want)
	for i := range gv.NumField() {
		name := gv.Type().Field(i).Name
		g, w := gv.Field(i).Interface(), wv.Field(i).Interface()
		if !equalField(g, w) {
			out = append(out, fmt.Sprintf("%s: got %s, want %s", name, show(g), show(w)))
		}
	}
	return out
}

func equalField(g, w any) bool {
	switch w := w.(type) {
	case session.Scopes:
		g := g.(session.Scopes)
		if len(g) == 0 && len(w) == 0 {
			return true
		}
		return g.String() == w.String() && reflect.DeepEqual(g, w)
	case time.Time:
		return equalTime(g.(time.Time), w)
	case *session.Extension:
		g := g.(*session.Extension)
		if g == nil || w == nil {
			return g == w
		}
		return g.By == w.By && g.RequestedBy == w.RequestedBy && equalTime(g.RequestedAt, w.RequestedAt)
	}
	return reflect.DeepEqual(g, w)
}

func equalTime(g, w time.Time) bool {
	if w.IsZero() {
		return g.IsZero()
	}
	// A time given in UTC comes back in UTC; one given in another zone
	// comes back as the same instant, in that zone or in UTC.
	return g.Equal(w) && (w.Location() != time.UTC || g.Location() == time.UTC)
}

func show(v any) string {
	switch v := v.(type) {
	case time.Time:
		if v.IsZero() {
			return "zero time"
		}
		return v.Format(time.RFC3339Nano) + " (" + v.Location().String() + ")"
	case *session.Extension:
		if v == nil {
			return "nil"
		}
		return fmt.Sprintf("&{By:%v RequestedBy:%q RequestedAt:%s}", v.By, v.RequestedBy, show(v.RequestedAt))
	case session.Scopes:
		return fmt.Sprintf("%q", v.String())
	}
	return fmt.Sprintf("%#v", v)
}

func checkSession(t *testing.T, what string, got, want *session.Session) {
	t.Helper()
	for _, d := range diff(got, want) {
		t.Errorf("%s: %s", what, d)
	}
}

func create(t *testing.T, st session.Store, ss ...*session.Session) {
	t.Helper()
	for _, s := range ss {
		if err := st.CreateSession(context.Background(), session.Change{Session: s}); err != nil {
			t.Fatalf("CreateSession(%s): %v", s.ID, err)
		}
	}
}

func get(t *testing.T, st session.Store, id string) *session.Session {
	t.Helper()
	s, err := st.GetSession(context.Background(), id)
	if err != nil {
		t.Fatalf("GetSession(%s): %v", id, err)
	}
	return s
}

// next returns a copy of s with the version bumped, as the Broker does.
func next(s *session.Session) *session.Session {
	c := s.Clone()
	c.Version++
	return c
}

func testRoundTrip(t *testing.T, st session.Store) {
	want := full(t, "7f3a0c1d9e8b", 1)
	// Guard the fixture: a field added to Session must be added here too.
	v := reflect.ValueOf(*want)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Fatalf("fixture leaves Session.%s zero; set it so the suite covers it", v.Type().Field(i).Name)
		}
	}
	create(t, st, want)
	checkSession(t, "GetSession", get(t, st, want.ID), want)

	got, err := st.SessionByToken(context.Background(), want.TokenHash)
	if err != nil {
		t.Fatalf("SessionByToken: %v", err)
	}
	checkSession(t, "SessionByToken", got, want)

	list, err := st.ListSessions(context.Background(), session.Filter{})
	if err != nil {
		t.Fatalf("ListSessions: %v", err)
	}
	if len(list) != 1 {
		t.Fatalf("ListSessions: got %d sessions, want 1", len(list))
	}
	checkSession(t, "ListSessions", list[0], want)

	open, err := st.OpenSessions(context.Background())
	if err != nil {
		t.Fatalf("OpenSessions: %v", err)
	}
	if len(open) != 1 {
		t.Fatalf("OpenSessions: got %d sessions, want 1", len(open))
	}
	checkSession(t, "OpenSessions", open[0], want)

	// Times given in another zone come back as the same instant.
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	z := full(t, "zoned", 2)
	z.CreatedAt = base.In(zone)
	z.Extension.RequestedAt = z.Extension.RequestedAt.In(zone)
	create(t, st, z)
	checkSession(t, "GetSession (zoned input)", get(t, st, "zoned"), z)
}

func testRoundTripMinimal(t *testing.T, st session.Store) {
	tests := []struct {
		name string
		s    *session.Session
	}{
		{"requested", minimal("min-1", 1, base)},
		{"all-zero-hash", func() *session.Session {
			s := minimal("min-2", 2, base)
			s.TokenHash = [32]byte{}
			return s
		}()},
		{"nil-scopes", func() *session.Session {
			s := minimal("min-3", 3, base)
			s.Requested = nil
			return s
		}()},
		{"no-extension", func() *session.Session {
			s := full(t, "min-4", 4)
			s.Extension = nil
			return s
		}()},
		{"extension-zero-fields", func() *session.Session {
			s := full(t, "min-5", 5)
			s.Extension = &session.Extension{}
			return s
		}()},
		{"max-hash", func() *session.Session {
			s := minimal("min-6", 6, base)
			for i := range s.TokenHash {
				s.TokenHash[i] = 0xff
				s.ClientHash[i] = 0xfe
				s.HelperHash[i] = 0xfd
				s.HandoffHash[i] = 0xfc
			}
			return s
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			create(t, st, tt.s)
			checkSession(t, "GetSession", get(t, st, tt.s.ID), tt.s)
		})
	}
}

func testCopies(t *testing.T, st session.Store) {
	s := full(t, "copy", 1)
	want := s.Clone()
	create(t, st, s)
	s.Customer = "changed"
	s.Scopes[0].Kind = session.Files
	s.Requested[3].Ports[0] = 1
	s.Extension.By = 1
	checkSession(t, "after changing the created session", get(t, st, "copy"), want)

	got := get(t, st, "copy")
	got.Agent = "mallory"
	got.Scopes[1].Ports[0] = 1
	got.Extension.RequestedBy = "mallory"
	checkSession(t, "after changing a read session", get(t, st, "copy"), want)
}

func testDuplicateID(t *testing.T, st session.Store) {
	first := full(t, "dup", 1)
	create(t, st, first)
	second := full(t, "dup", 2)
	second.Customer = "someone else"
	if err := st.CreateSession(context.Background(), session.Change{Session: second}); err == nil {
		t.Fatalf("CreateSession with a duplicate ID: got nil error, want one")
	}
	checkSession(t, "GetSession after duplicate", get(t, st, "dup"), first)
	if _, err := st.SessionByToken(context.Background(), second.TokenHash); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("SessionByToken of the refused session: got %v, want ErrNotFound", err)
	}
}

func testDuplicateToken(t *testing.T, st session.Store) {
	first := full(t, "tok-1", 1)
	create(t, st, first)
	second := full(t, "tok-2", 1) // same token hash
	if err := st.CreateSession(context.Background(), session.Change{Session: second}); err == nil {
		t.Fatalf("CreateSession with a duplicate token hash: got nil error, want one")
	}
	if _, err := st.GetSession(context.Background(), "tok-2"); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("GetSession of the refused session: got %v, want ErrNotFound", err)
	}
	got, err := st.SessionByToken(context.Background(), first.TokenHash)
	if err != nil {
		t.Fatalf("SessionByToken: %v", err)
	}
	checkSession(t, "SessionByToken after duplicate", got, first)
}

func testNotFound(t *testing.T, st session.Store) {
	ctx := context.Background()
	create(t, st, full(t, "present", 1))
	if _, err := st.GetSession(ctx, "absent"); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("GetSession(absent): got %v, want ErrNotFound", err)
	}
	if _, err := st.GetSession(ctx, ""); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("GetSession(\"\"): got %v, want ErrNotFound", err)
	}
	if _, err := st.SessionByToken(ctx, hashOf(9)); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("SessionByToken(unknown): got %v, want ErrNotFound", err)
	}
	if _, err := st.SessionByToken(ctx, [32]byte{}); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("SessionByToken(zero): got %v, want ErrNotFound", err)
	}
	ghost := full(t, "absent", 9)
	ghost.Version = 2
	if err := st.UpdateSessions(ctx, Changes(ghost)...); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("UpdateSessions(absent): got %v, want ErrNotFound", err)
	}
	if _, err := st.GetSession(ctx, "absent"); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("GetSession after updating an absent session: got %v, want ErrNotFound", err)
	}
	// A missing session in a batch stores nothing of the batch.
	p := next(get(t, st, "present"))
	p.Customer = "changed"
	if err := st.UpdateSessions(ctx, Changes(p, ghost)...); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("UpdateSessions(present, absent): got %v, want ErrNotFound", err)
	}
	if got := get(t, st, "present"); got.Version != 1 || got.Customer == "changed" {
		t.Errorf("after a failed batch: got version %d customer %q, want version 1 unchanged", got.Version, got.Customer)
	}
}

func testUpdate(t *testing.T, st session.Store) {
	ctx := context.Background()
	s := minimal("upd", 1, base)
	create(t, st, s)

	// requested -> active, with an extension pending.
	a := next(s)
	a.State = session.Active
	a.Scopes = session.Scopes{{Kind: session.View}, {Kind: session.Tunnel, Ports: []uint16{22, 65535}}}
	a.Requested = mustScopes(t, "view,tunnel:22,65535,8080")
	a.Duration = time.Hour
	a.ApprovedAt = base.Add(time.Minute + 1*time.Microsecond)
	a.ExpiresAt = a.ApprovedAt.Add(time.Hour)
	a.LastActivity = a.ApprovedAt
	a.IdleTimeout = 10 * time.Minute
	a.ClientHash = hashOf(200)
	a.VerificationCode = "123456"
	a.Extension = &session.Extension{By: 5 * time.Minute, RequestedBy: "bob", RequestedAt: base.Add(2 * time.Minute)}
	if err := st.UpdateSessions(ctx, Changes(a)...); err != nil {
		t.Fatalf("UpdateSessions(active): %v", err)
	}
	checkSession(t, "after approval", get(t, st, "upd"), a)

	// Extension cleared, then ended.
	e := next(a)
	e.Extension = nil
	e.ExpiresAt = e.ExpiresAt.Add(5 * time.Minute)
	if err := st.UpdateSessions(ctx, Changes(e)...); err != nil {
		t.Fatalf("UpdateSessions(extended): %v", err)
	}
	checkSession(t, "after extension", get(t, st, "upd"), e)

	d := next(e)
	d.State = session.Ended
	d.EndReason = session.EndExpired
	d.EndedBy = "system"
	d.EndedAt = d.ExpiresAt
	d.Scopes = nil
	if err := st.UpdateSessions(ctx, Changes(d)...); err != nil {
		t.Fatalf("UpdateSessions(ended): %v", err)
	}
	checkSession(t, "after end", get(t, st, "upd"), d)
	got, err := st.SessionByToken(ctx, s.TokenHash)
	if err != nil {
		t.Fatalf("SessionByToken after updates: %v", err)
	}
	checkSession(t, "SessionByToken after updates", got, d)

	// Even the fields the Broker never changes after creation are stored.
	r := next(d)
	r.Agent, r.Team = "carol", "blue"
	r.CreatedAt = base.Add(-time.Hour)
	r.TokenHash = hashOf(201)
	if err := st.UpdateSessions(ctx, Changes(r)...); err != nil {
		t.Fatalf("UpdateSessions(identity fields): %v", err)
	}
	checkSession(t, "after changing identity fields", get(t, st, "upd"), r)
	if _, err := st.SessionByToken(ctx, s.TokenHash); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("SessionByToken(old hash): got %v, want ErrNotFound", err)
	}
	if got, err := st.SessionByToken(ctx, r.TokenHash); err != nil || got.ID != "upd" {
		t.Errorf("SessionByToken(new hash): got %v, %v, want session upd", got, err)
	}
	if list, err := st.ListSessions(ctx, session.Filter{Agent: "carol", Team: "blue"}); err != nil || len(list) != 1 {
		t.Errorf("ListSessions(new agent and team): got %d, %v, want 1 session", len(list), err)
	}
}

// testUpdateWithBefore changes every field in turn, each change passing the
// previous version as Before, and checks that each is stored: a store that
// writes only what differs from Before must notice every field.
func testUpdateWithBefore(t *testing.T, st session.Store) {
	ctx := context.Background()
	cur := minimal("bef", 1, base)
	create(t, st, cur)
	steps := []struct {
		name   string
		mutate func(s *session.Session)
	}{
		{"bind", func(s *session.Session) { s.ClientHash = hashOf(77) }},
		{"approve", func(s *session.Session) {
			s.State, s.Scopes = session.Active, session.Scopes{{Kind: session.View}}
			s.ApprovedAt, s.ExpiresAt = base.Add(time.Minute), base.Add(31*time.Minute)
			s.LastActivity = base.Add(time.Minute)
		}},
		{"agent name", func(s *session.Session) { s.AgentName = "Bob B." }},
		{"customer", func(s *session.Session) { s.Customer = "ACME 2" }},
		{"reason", func(s *session.Session) { s.Reason = "printer again" }},
		{"requested", func(s *session.Session) { s.Requested = mustScopes(t, "view,tunnel:22,443") }},
		{"scopes ports", func(s *session.Session) { s.Scopes = session.Scopes{{Kind: session.Tunnel, Ports: []uint16{22}}} }},
		{"scopes port changed", func(s *session.Session) { s.Scopes = session.Scopes{{Kind: session.Tunnel, Ports: []uint16{443}}} }},
		{"duration", func(s *session.Session) { s.Duration = 45 * time.Minute }},
		{"consent expiry", func(s *session.Session) { s.ConsentExpiresAt = base.Add(16 * time.Minute) }},
		{"idle timeout", func(s *session.Session) { s.IdleTimeout = 7 * time.Minute }},
		{"code", func(s *session.Session) { s.VerificationCode = "654321" }},
		{"handoff", func(s *session.Session) { s.HandoffHash, s.HandoffExpiresAt = hashOf(79), base.Add(12*time.Minute) }},
		{"helper", func(s *session.Session) {
			s.HelperHash, s.HandoffHash, s.HandoffExpiresAt = hashOf(80), [32]byte{}, time.Time{}
		}},
		{"extension", func(s *session.Session) {
			s.Extension = &session.Extension{By: 10 * time.Minute, RequestedBy: "bob", RequestedAt: base.Add(5 * time.Minute)}
		}},
		{"extension by", func(s *session.Session) { s.Extension.By = 20 * time.Minute }},
		{"extension requester", func(s *session.Session) { s.Extension.RequestedBy = "sue" }},
		{"extension time", func(s *session.Session) { s.Extension.RequestedAt = base.Add(6 * time.Minute) }},
		{"extension done", func(s *session.Session) { s.Extension, s.ExpiresAt = nil, base.Add(51*time.Minute) }},
		{"end", func(s *session.Session) {
			s.State, s.EndReason, s.EndedBy, s.EndedAt = session.Ended, session.EndRevoked, "customer", base.Add(9*time.Minute)
			s.Scopes = nil
		}},
		{"identity", func(s *session.Session) {
			s.Agent, s.Team, s.CreatedAt, s.TokenHash = "carol", "blue", base.Add(-time.Hour), hashOf(78)
		}},
	}
	changed := map[string]bool{}
	for _, step := range steps {
		n := next(cur)
		step.mutate(n)
		bv, nv := reflect.ValueOf(*cur), reflect.ValueOf(*n)
		for i := range nv.NumField() {
			if !reflect.DeepEqual(bv.Field(i).Interface(), nv.Field(i).Interface()) {
				changed[nv.Type().Field(i).Name] = true
			}
		}
		if err := st.UpdateSessions(ctx, session.Change{Session: n, Before: cur}); err != nil {
			t.Fatalf("%s: UpdateSessions: %v", step.name, err)
		}
		checkSession(t, step.name, get(t, st, "bef"), n)
		cur = n
	}
	// Guard the steps: a field added to Session must be changed by one.
	for i, ty := 0, reflect.TypeFor[session.Session](); i < ty.NumField(); i++ {
		if name := ty.Field(i).Name; name != "ID" && !changed[name] {
			t.Fatalf("no step changes Session.%s; add one so the suite covers it", name)
		}
	}

	// LastActivity moved in memory: Before already has it, the store does not.
	touched := cur.Clone()
	touched.LastActivity = base.Add(8 * time.Minute)
	n := next(touched)
	n.Reason = "touched"
	if err := st.UpdateSessions(ctx, session.Change{Session: n, Before: touched}); err != nil {
		t.Fatalf("touched: UpdateSessions: %v", err)
	}
	checkSession(t, "after a change with activity moved in memory", get(t, st, "bef"), n)

	// A stale writer with Before still loses.
	stale := next(cur)
	stale.Customer = "stale"
	if err := st.UpdateSessions(ctx, session.Change{Session: stale, Before: cur}); !errors.Is(err, session.ErrConflict) {
		t.Errorf("stale UpdateSessions with Before: got %v, want ErrConflict", err)
	}
	checkSession(t, "after stale update", get(t, st, "bef"), n)
	// And a missing session is still missing.
	ghost, ghostBefore := next(minimal("ghost", 2, base)), minimal("ghost", 2, base)
	if err := st.UpdateSessions(ctx, session.Change{Session: ghost, Before: ghostBefore}); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("UpdateSessions(missing, with Before): got %v, want ErrNotFound", err)
	}
}

func testUpdateConflict(t *testing.T, st session.Store) {
	ctx := context.Background()
	s := full(t, "conf", 1)
	create(t, st, s)
	tests := []struct {
		name    string
		version int64
	}{
		{"same", 1},
		{"skip", 3},
		{"older", 0},
		{"negative", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := s.Clone()
			u.Version = tt.version
			u.Customer = "overwritten"
			if err := st.UpdateSessions(ctx, Changes(u)...); !errors.Is(err, session.ErrConflict) {
				t.Errorf("UpdateSessions(version %d over 1): got %v, want ErrConflict", tt.version, err)
			}
			checkSession(t, "after conflict", get(t, st, "conf"), s)
		})
	}
	// A stale writer loses to the one that got there first.
	w1, w2 := next(s), next(s)
	w1.EndedBy, w2.EndedBy = "first", "second"
	if err := st.UpdateSessions(ctx, Changes(w1)...); err != nil {
		t.Fatalf("UpdateSessions(first writer): %v", err)
	}
	if err := st.UpdateSessions(ctx, Changes(w2)...); !errors.Is(err, session.ErrConflict) {
		t.Errorf("UpdateSessions(second writer): got %v, want ErrConflict", err)
	}
	checkSession(t, "after two writers", get(t, st, "conf"), w1)
}

func testUpdateBatch(t *testing.T, st session.Store) {
	ctx := context.Background()
	var ss []*session.Session
	for i := range 5 {
		s := minimal(fmt.Sprintf("batch-%d", i), byte(i+1), base.Add(time.Duration(i)*time.Second))
		ss = append(ss, s)
	}
	create(t, st, ss...)

	for bad := range ss {
		t.Run(fmt.Sprintf("conflict-at-%d", bad), func(t *testing.T) {
			var batch []*session.Session
			for i, s := range ss {
				u := next(s)
				u.State = session.Ended
				u.EndReason = session.EndLocked
				if i == bad {
					u.Version = s.Version // stale
				}
				batch = append(batch, u)
			}
			if err := st.UpdateSessions(ctx, Changes(batch...)...); !errors.Is(err, session.ErrConflict) {
				t.Fatalf("UpdateSessions with item %d stale: got %v, want ErrConflict", bad, err)
			}
			for _, s := range ss {
				checkSession(t, "after failed batch", get(t, st, s.ID), s)
			}
		})
	}

	// The whole batch, valid, lands.
	var batch []*session.Session
	for _, s := range ss {
		u := next(s)
		u.State = session.Ended
		u.EndReason = session.EndLocked
		u.EndedBy = "admin"
		u.EndedAt = base.Add(time.Hour)
		batch = append(batch, u)
	}
	if err := st.UpdateSessions(ctx, Changes(batch...)...); err != nil {
		t.Fatalf("UpdateSessions(valid batch): %v", err)
	}
	for _, u := range batch {
		checkSession(t, "after valid batch", get(t, st, u.ID), u)
	}
	open, err := st.OpenSessions(ctx)
	if err != nil {
		t.Fatalf("OpenSessions: %v", err)
	}
	if len(open) != 0 {
		t.Errorf("OpenSessions after ending all: got %d, want 0", len(open))
	}
}

func testUpdateEmpty(t *testing.T, st session.Store) {
	if err := st.UpdateSessions(context.Background()); err != nil {
		t.Errorf("UpdateSessions(): got %v, want nil", err)
	}
}

func testSessionByToken(t *testing.T, st session.Store) {
	ctx := context.Background()
	var ss []*session.Session
	for i := range 10 {
		ss = append(ss, minimal(fmt.Sprintf("bt-%d", i), byte(10+i), base))
	}
	create(t, st, ss...)
	for _, s := range ss {
		got, err := st.SessionByToken(ctx, s.TokenHash)
		if err != nil {
			t.Fatalf("SessionByToken(%s): %v", s.ID, err)
		}
		if got.ID != s.ID {
			t.Errorf("SessionByToken: got session %s, want %s", got.ID, s.ID)
		}
	}
	// A hash differing in its last byte only is another hash.
	h := ss[0].TokenHash
	h[31] ^= 1
	if _, err := st.SessionByToken(ctx, h); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("SessionByToken(near miss): got %v, want ErrNotFound", err)
	}
}

func ids(ss []*session.Session) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.ID
	}
	return out
}

func testListFilters(t *testing.T, st session.Store) {
	ctx := context.Background()
	// s0 is the oldest, s7 the newest; s8 shares s7's creation time. The
	// active sessions and s2 and s6 were approved; s5 was denied.
	spec := []struct {
		agent, team string
		state       session.State
		approved    bool
	}{
		{"alice", "red", session.Requested, false},
		{"alice", "red", session.Active, true},
		{"bob", "red", session.Ended, true},
		{"bob", "blue", session.Active, true},
		{"carol", "blue", session.Requested, false},
		{"alice", "red", session.Ended, false},
		{"carol", "blue", session.Ended, true},
		{"bob", "", session.Active, true},
		{"alice", "red", session.Active, true},
	}
	byID := map[string]*session.Session{}
	for i, sp := range spec {
		created := base.Add(time.Duration(i) * time.Minute).Add(time.Duration(i) * time.Microsecond)
		if i == 8 {
			created = base.Add(7 * time.Minute).Add(7 * time.Microsecond)
		}
		s := minimal(fmt.Sprintf("s%d", i), byte(i+1), created)
		s.Agent, s.Team, s.State = sp.agent, sp.team, sp.state
		if sp.approved {
			s.ApprovedAt = created.Add(time.Minute)
		}
		create(t, st, s)
		byID[s.ID] = s
	}
	tests := []struct {
		name string
		f    session.Filter
		want []string
	}{
		{"all", session.Filter{}, []string{"s8", "s7", "s6", "s5", "s4", "s3", "s2", "s1", "s0"}},
		{"agent", session.Filter{Agent: "alice"}, []string{"s8", "s5", "s1", "s0"}},
		{"team", session.Filter{Team: "blue"}, []string{"s6", "s4", "s3"}},
		{"state", session.Filter{State: session.Active}, []string{"s8", "s7", "s3", "s1"}},
		{"ended", session.Filter{State: session.Ended}, []string{"s6", "s5", "s2"}},
		{"since inclusive", session.Filter{Since: base.Add(5*time.Minute + 5*time.Microsecond)}, []string{"s8", "s7", "s6", "s5"}},
		{"since just after", session.Filter{Since: base.Add(5*time.Minute + 6*time.Microsecond)}, []string{"s8", "s7", "s6"}},
		{"since in other zone", session.Filter{Since: base.Add(6*time.Minute + 6*time.Microsecond).In(time.FixedZone("X", -7*3600))}, []string{"s8", "s7", "s6"}},
		{"since future", session.Filter{Since: base.Add(time.Hour)}, []string{}},
		{"limit", session.Filter{Limit: 3}, []string{"s8", "s7", "s6"}},
		{"limit one", session.Filter{Limit: 1}, []string{"s8"}},
		{"negative limit", session.Filter{Limit: -1}, []string{"s8", "s7", "s6", "s5", "s4", "s3", "s2", "s1", "s0"}},
		{"agent and state", session.Filter{Agent: "alice", State: session.Active}, []string{"s8", "s1"}},
		{"team and since and limit", session.Filter{Team: "red", Since: base.Add(time.Minute), Limit: 2}, []string{"s8", "s5"}},
		{"all four", session.Filter{Agent: "bob", Team: "red", State: session.Ended, Since: base}, []string{"s2"}},
		{"unknown agent", session.Filter{Agent: "mallory"}, []string{}},
		{"agent is exact", session.Filter{Agent: "ALICE"}, []string{}},
		{"agent is not a pattern", session.Filter{Agent: "%"}, []string{}},
		{"approved", session.Filter{Approved: true}, []string{"s8", "s7", "s6", "s3", "s2", "s1"}},
		{"approved and ended", session.Filter{Approved: true, State: session.Ended}, []string{"s6", "s2"}},
		{"after", session.Filter{After: byID["s5"]}, []string{"s4", "s3", "s2", "s1", "s0"}},
		{"after a tie", session.Filter{After: byID["s8"]}, []string{"s7", "s6", "s5", "s4", "s3", "s2", "s1", "s0"}},
		{"after the other of a tie", session.Filter{After: byID["s7"]}, []string{"s6", "s5", "s4", "s3", "s2", "s1", "s0"}},
		{"after the oldest", session.Filter{After: byID["s0"]}, []string{}},
		{"approved after, limited", session.Filter{Approved: true, After: byID["s7"], Limit: 2}, []string{"s6", "s3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := st.ListSessions(ctx, tt.f)
			if err != nil {
				t.Fatalf("ListSessions(%+v): %v", tt.f, err)
			}
			if g := ids(got); !slices.Equal(g, tt.want) {
				t.Errorf("ListSessions(%+v): got %v, want %v", tt.f, g, tt.want)
			}
		})
	}
}

func testListCap(t *testing.T, st session.Store) {
	ctx := context.Background()
	n := session.MaxList + 5
	for i := range n {
		s := minimal(fmt.Sprintf("cap-%05d", i), 0, base.Add(time.Duration(i)*time.Millisecond))
		s.TokenHash = [32]byte{byte(i), byte(i >> 8), 0xca, 0xfe}
		create(t, st, s)
	}
	tests := []struct {
		limit, want int
	}{
		{0, session.MaxList},
		{-5, session.MaxList},
		{session.MaxList + 1, session.MaxList},
		{1 << 30, session.MaxList},
		{session.MaxList, session.MaxList},
		{10, 10},
	}
	for _, tt := range tests {
		got, err := st.ListSessions(ctx, session.Filter{Limit: tt.limit})
		if err != nil {
			t.Fatalf("ListSessions(Limit %d): %v", tt.limit, err)
		}
		if len(got) != tt.want {
			t.Errorf("ListSessions(Limit %d): got %d sessions, want %d", tt.limit, len(got), tt.want)
			continue
		}
		if first := fmt.Sprintf("cap-%05d", n-1); got[0].ID != first {
			t.Errorf("ListSessions(Limit %d): first is %s, want the newest %s", tt.limit, got[0].ID, first)
		}
		for i := 1; i < len(got); i++ {
			if !got[i].CreatedAt.Before(got[i-1].CreatedAt) {
				t.Fatalf("ListSessions(Limit %d): %s at %d is not older than %s", tt.limit, got[i].ID, i, got[i-1].ID)
			}
		}
	}
}

func testOpenSessions(t *testing.T, st session.Store) {
	ctx := context.Background()
	open, err := st.OpenSessions(ctx)
	if err != nil {
		t.Fatalf("OpenSessions on an empty store: %v", err)
	}
	if len(open) != 0 {
		t.Fatalf("OpenSessions on an empty store: got %d, want 0", len(open))
	}
	states := []session.State{session.Requested, session.Active, session.Ended, session.Active, session.Ended, session.Requested}
	want := map[string]*session.Session{}
	for i, state := range states {
		s := full(t, fmt.Sprintf("open-%d", i), byte(i+1))
		s.State = state
		create(t, st, s)
		if state != session.Ended {
			want[s.ID] = s
		}
	}
	// End one of the open ones through an update.
	u := next(want["open-1"])
	u.State = session.Ended
	if err := st.UpdateSessions(ctx, Changes(u)...); err != nil {
		t.Fatalf("UpdateSessions: %v", err)
	}
	delete(want, "open-1")

	open, err = st.OpenSessions(ctx)
	if err != nil {
		t.Fatalf("OpenSessions: %v", err)
	}
	got := ids(open)
	slices.Sort(got)
	var wantIDs []string
	for id := range want {
		wantIDs = append(wantIDs, id)
	}
	slices.Sort(wantIDs)
	if !slices.Equal(got, wantIDs) {
		t.Fatalf("OpenSessions: got %v, want %v", got, wantIDs)
	}
	for _, s := range open {
		checkSession(t, "OpenSessions "+s.ID, s, want[s.ID])
	}
}

func testConcurrentDistinct(t *testing.T, st session.Store) {
	ctx := context.Background()
	const workers, rounds = 8, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			s := minimal(fmt.Sprintf("conc-%d", w), byte(w+1), base.Add(time.Duration(w)*time.Second))
			if err := st.CreateSession(ctx, session.Change{Session: s}); err != nil {
				errs <- fmt.Errorf("CreateSession(%s): %w", s.ID, err)
				return
			}
			for r := range rounds {
				s = next(s)
				s.LastActivity = base.Add(time.Duration(r) * time.Second)
				if err := st.UpdateSessions(ctx, Changes(s)...); err != nil {
					errs <- fmt.Errorf("UpdateSessions(%s, version %d): %w", s.ID, s.Version, err)
					return
				}
				if _, err := st.GetSession(ctx, s.ID); err != nil {
					errs <- fmt.Errorf("GetSession(%s): %w", s.ID, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for w := range workers {
		got := get(t, st, fmt.Sprintf("conc-%d", w))
		if got.Version != rounds+1 {
			t.Errorf("%s: got version %d, want %d", got.ID, got.Version, rounds+1)
		}
		if want := base.Add((rounds - 1) * time.Second); !got.LastActivity.Equal(want) {
			t.Errorf("%s: got LastActivity %v, want %v", got.ID, got.LastActivity, want)
		}
	}
}

func testConcurrentSame(t *testing.T, st session.Store) {
	ctx := context.Background()
	s := minimal("race", 1, base)
	create(t, st, s)
	const writers = 8
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex // guards wins, conflicts, other
		wins      []string
		conflicts int
		other     []error
	)
	for w := range writers {
		wg.Go(func() {
			u := next(s)
			u.EndedBy = fmt.Sprintf("writer-%d", w)
			err := st.UpdateSessions(ctx, Changes(u)...)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins = append(wins, u.EndedBy)
			case errors.Is(err, session.ErrConflict):
				conflicts++
			default:
				other = append(other, err)
			}
		})
	}
	wg.Wait()
	for _, err := range other {
		t.Errorf("UpdateSessions: got %v, want nil or ErrConflict", err)
	}
	if len(wins) != 1 || conflicts != writers-1 {
		t.Fatalf("%d writers of version 2: got %d wins and %d conflicts, want 1 and %d", writers, len(wins), conflicts, writers-1)
	}
	if got := get(t, st, "race"); got.EndedBy != wins[0] || got.Version != 2 {
		t.Errorf("stored: got EndedBy %q version %d, want %q version 2", got.EndedBy, got.Version, wins[0])
	}
}
