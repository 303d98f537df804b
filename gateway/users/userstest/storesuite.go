package userstest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"supportgate/gateway/users"
)

// RunStoreTests checks that a users.Store keeps the contract of that
// interface. newStore must return an empty store for each call and register
// its own cleanup with t.Cleanup.
//
// Beyond the interface comments, the suite pins down what callers rely on:
//
//   - every field of a User and a Token round trips; times to at least the
//     microsecond, coming back in UTC when given in UTC; a zero time comes
//     back zero; a nil and an empty TOTPSecret are equivalent.
//   - CreateUser stores Version 1 whatever the argument says.
//   - UpdateUser of a missing user fails with users.ErrNotFound.
//   - CreateToken of a hash already stored fails with users.ErrExists and
//     leaves the stored token alone.
//   - DeleteExpiredTokens removes tokens whose ExpiresAt is strictly before
//     now and returns how many it removed.
//   - a store keeps its own copy of what it is given and hands out copies.
func RunStoreTests(t *testing.T, newStore func(t *testing.T) users.Store) {
	t.Helper()
	tests := []struct {
		name string
		f    func(t *testing.T, st users.Store)
	}{
		{"UserRoundTrip", testUserRoundTrip},
		{"UserMinimal", testUserMinimal},
		{"UserCopies", testUserCopies},
		{"UserExists", testUserExists},
		{"UserNotFound", testUserNotFound},
		{"UserUpdate", testUserUpdate},
		{"UserConflict", testUserConflict},
		{"UserConcurrentUpdate", testUserConcurrent},
		{"ListAndCount", testListCount},
		{"TokenRoundTrip", testTokenRoundTrip},
		{"TokenExists", testTokenExists},
		{"TokenDeleteOnce", testTokenDeleteOnce},
		{"TokenDeleteConcurrent", testTokenDeleteConcurrent},
		{"DeleteUserTokens", testDeleteUserTokens},
		{"DeleteExpiredTokens", testDeleteExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.f(t, newStore(t)) })
	}
}

var base = time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC)

func hashOf(b byte) [32]byte {
	var h [32]byte
	for i := range h {
		h[i] = b ^ byte(i*13)
	}
	h[0] = b
	return h
}

// fullUser returns a user with every field set to a non-zero value.
func fullUser(name string) *users.User {
	return &users.User{
		Name:         name,
		DisplayName:  "Alice Ångström (Support)",
		Role:         "supervisor",
		Team:         "tier2",
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
		TOTPSecret:   []byte{0, 1, 2, 0xfe, 0xff, 0, 'a', 0x80, 0, 0},
		TOTPLast:     58373952,
		Enrolled:     true,
		Failures:     4,
		LastFailure:  base.Add(-2*time.Minute + 7*time.Microsecond),
		LockedUntil:  base.Add(15*time.Minute + 1*time.Microsecond),
		Disabled:     true,
		CreatedAt:    base,
		Version:      1,
	}
}

func diffUser(got, want *users.User) []string {
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
	case []byte:
		return slices.Equal(g.([]byte), w)
	case time.Time:
		g := g.(time.Time)
		if w.IsZero() {
			return g.IsZero()
		}
		return g.Equal(w) && (w.Location() != time.UTC || g.Location() == time.UTC)
	}
	return reflect.DeepEqual(g, w)
}

func show(v any) string {
	if t, ok := v.(time.Time); ok {
		if t.IsZero() {
			return "zero time"
		}
		return t.Format(time.RFC3339Nano) + " (" + t.Location().String() + ")"
	}
	return fmt.Sprintf("%#v", v)
}

func checkUser(t *testing.T, what string, got, want *users.User) {
	t.Helper()
	for _, d := range diffUser(got, want) {
		t.Errorf("%s: %s", what, d)
	}
}

func mustCreate(t *testing.T, st users.Store, us ...*users.User) {
	t.Helper()
	for _, u := range us {
		if err := st.CreateUser(context.Background(), u); err != nil {
			t.Fatalf("CreateUser(%s): %v", u.Name, err)
		}
	}
}

func mustGet(t *testing.T, st users.Store, name string) *users.User {
	t.Helper()
	u, err := st.GetUser(context.Background(), name)
	if err != nil {
		t.Fatalf("GetUser(%s): %v", name, err)
	}
	return u
}

func testUserRoundTrip(t *testing.T, st users.Store) {
	want := fullUser("alice")
	v := reflect.ValueOf(*want)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Fatalf("fixture leaves User.%s zero; set it so the suite covers it", v.Type().Field(i).Name)
		}
	}
	mustCreate(t, st, want)
	checkUser(t, "GetUser", mustGet(t, st, "alice"), want)
	list, err := st.ListUsers(context.Background())
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	if len(list) != 1 {
		t.Fatalf("ListUsers: got %d users, want 1", len(list))
	}
	checkUser(t, "ListUsers", list[0], want)

	// A zoned time comes back as the same instant.
	z := fullUser("zoned")
	z.CreatedAt = base.In(time.FixedZone("X", -3*3600))
	mustCreate(t, st, z)
	checkUser(t, "GetUser (zoned)", mustGet(t, st, "zoned"), z)
}

func testUserMinimal(t *testing.T, st users.Store) {
	tests := []struct {
		name string
		u    *users.User
	}{
		{"new", &users.User{Name: "bob", Role: "agent", CreatedAt: base, Version: 1}},
		{"empty-secret", &users.User{Name: "carol", Role: "agent", TOTPSecret: []byte{}, CreatedAt: base, Version: 1}},
		{"no-times", &users.User{Name: "dave", Role: "admin", Version: 1}},
		{"negative-last", &users.User{Name: "erin", Role: "auditor", TOTPLast: -1, Failures: 1 << 30, Version: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustCreate(t, st, tt.u)
			checkUser(t, "GetUser", mustGet(t, st, tt.u.Name), tt.u)
		})
	}
}

func testUserCopies(t *testing.T, st users.Store) {
	u := fullUser("alice")
	want := fullUser("alice")
	mustCreate(t, st, u)
	u.TOTPSecret[0] = 0x55
	u.DisplayName = "changed"
	checkUser(t, "after changing the created user", mustGet(t, st, "alice"), want)
	got := mustGet(t, st, "alice")
	got.TOTPSecret[1] = 0x55
	checkUser(t, "after changing a read user", mustGet(t, st, "alice"), want)
}

func testUserExists(t *testing.T, st users.Store) {
	first := fullUser("alice")
	mustCreate(t, st, first)
	second := fullUser("alice")
	second.Role = "admin"
	if err := st.CreateUser(context.Background(), second); !errors.Is(err, users.ErrExists) {
		t.Fatalf("CreateUser(duplicate): got %v, want ErrExists", err)
	}
	checkUser(t, "after duplicate", mustGet(t, st, "alice"), first)
	if n, err := st.CountUsers(context.Background()); err != nil || n != 1 {
		t.Errorf("CountUsers: got %d, %v, want 1, nil", n, err)
	}
}

func testUserNotFound(t *testing.T, st users.Store) {
	ctx := context.Background()
	mustCreate(t, st, fullUser("alice"))
	for _, name := range []string{"bob", "", "ALICE", "alice "} {
		if _, err := st.GetUser(ctx, name); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("GetUser(%q): got %v, want ErrNotFound", name, err)
		}
	}
	ghost := fullUser("bob")
	ghost.Version = 2
	if err := st.UpdateUser(ctx, ghost); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("UpdateUser(missing): got %v, want ErrNotFound", err)
	}
	if _, err := st.GetUser(ctx, "bob"); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("GetUser after updating a missing user: got %v, want ErrNotFound", err)
	}
}

func testUserUpdate(t *testing.T, st users.Store) {
	ctx := context.Background()
	u := &users.User{Name: "alice", Role: "agent", CreatedAt: base}
	mustCreate(t, st, u)
	got := mustGet(t, st, "alice")
	if got.Version != 1 {
		t.Fatalf("CreateUser with Version 0: got stored version %d, want 1", got.Version)
	}

	// Enrol, then fail logins into a lockout, then clear it.
	steps := []func(u *users.User){
		func(u *users.User) {
			u.PasswordHash = "$argon2id$v=19$m=65536,t=3,p=4$YQ$Yg"
			u.TOTPSecret = []byte("12345678901234567890")
			u.Enrolled = true
			u.DisplayName = "Alice A."
		},
		func(u *users.User) {
			u.Failures = 5
			u.LastFailure = base.Add(time.Minute)
			u.LockedUntil = base.Add(15 * time.Minute)
			u.TOTPLast = 99
		},
		func(u *users.User) {
			u.Failures = 0
			u.LastFailure = time.Time{}
			u.LockedUntil = time.Time{}
			u.Disabled = true
			u.Role = "supervisor"
			u.Team = "red"
			u.TOTPSecret = nil
		},
	}
	for i, step := range steps {
		n := mustGet(t, st, "alice")
		step(n)
		n.Version++
		if err := st.UpdateUser(ctx, n); err != nil {
			t.Fatalf("step %d: UpdateUser: %v", i, err)
		}
		checkUser(t, fmt.Sprintf("step %d", i), mustGet(t, st, "alice"), n)
	}
	if got := mustGet(t, st, "alice"); got.Version != int64(len(steps)+1) {
		t.Errorf("final version: got %d, want %d", got.Version, len(steps)+1)
	}
}

func testUserConflict(t *testing.T, st users.Store) {
	ctx := context.Background()
	want := fullUser("alice")
	mustCreate(t, st, want)
	for _, v := range []int64{0, 1, 3, 100, -1} {
		u := fullUser("alice")
		u.Version = v
		u.Failures = 0
		if err := st.UpdateUser(ctx, u); !errors.Is(err, users.ErrConflict) {
			t.Errorf("UpdateUser(version %d over 1): got %v, want ErrConflict", v, err)
		}
	}
	checkUser(t, "after conflicts", mustGet(t, st, "alice"), want)
}

func testUserConcurrent(t *testing.T, st users.Store) {
	// Two logins failing at once must not both write Failures+1 over the
	// same version: exactly one wins.
	ctx := context.Background()
	mustCreate(t, st, fullUser("alice"))
	const writers = 8
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex // guards wins, conflicts, other
		wins      int
		conflicts int
		other     []error
	)
	for w := range writers {
		wg.Go(func() {
			u := fullUser("alice")
			u.Version = 2
			u.Failures = 10 + w
			err := st.UpdateUser(ctx, u)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, users.ErrConflict):
				conflicts++
			default:
				other = append(other, err)
			}
		})
	}
	wg.Wait()
	for _, err := range other {
		t.Errorf("UpdateUser: got %v, want nil or ErrConflict", err)
	}
	if wins != 1 || conflicts != writers-1 {
		t.Errorf("%d concurrent updates to version 2: got %d wins, %d conflicts, want 1 and %d", writers, wins, conflicts, writers-1)
	}
	if got := mustGet(t, st, "alice"); got.Version != 2 || got.Failures < 10 {
		t.Errorf("stored: got version %d failures %d, want version 2 and one writer's failures", got.Version, got.Failures)
	}

	// Distinct users update concurrently without interfering.
	for i := range writers {
		mustCreate(t, st, &users.User{Name: fmt.Sprintf("u%d", i), Role: "agent", CreatedAt: base})
	}
	errs := make(chan error, writers)
	for i := range writers {
		wg.Go(func() {
			name := fmt.Sprintf("u%d", i)
			for r := range 10 {
				u, err := st.GetUser(ctx, name)
				if err != nil {
					errs <- err
					return
				}
				u.Failures = r
				u.Version++
				if err := st.UpdateUser(ctx, u); err != nil {
					errs <- fmt.Errorf("UpdateUser(%s): %w", name, err)
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
	for i := range writers {
		if u := mustGet(t, st, fmt.Sprintf("u%d", i)); u.Version != 11 || u.Failures != 9 {
			t.Errorf("%s: got version %d failures %d, want 11 and 9", u.Name, u.Version, u.Failures)
		}
	}
}

func testListCount(t *testing.T, st users.Store) {
	ctx := context.Background()
	list, err := st.ListUsers(ctx)
	if err != nil || len(list) != 0 {
		t.Fatalf("ListUsers on an empty store: got %d users, %v, want 0, nil", len(list), err)
	}
	if n, err := st.CountUsers(ctx); err != nil || n != 0 {
		t.Fatalf("CountUsers on an empty store: got %d, %v, want 0, nil", n, err)
	}
	names := []string{"mallory", "alice", "zed", "bob", "a.b-c_d", "0day"}
	for _, n := range names {
		u := fullUser(n)
		u.Role = "agent"
		mustCreate(t, st, u)
	}
	want := slices.Clone(names)
	slices.Sort(want)
	list, err = st.ListUsers(ctx)
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	var got []string
	for _, u := range list {
		got = append(got, u.Name)
		w := fullUser(u.Name)
		w.Role = "agent"
		checkUser(t, "ListUsers "+u.Name, u, w)
	}
	if !slices.Equal(got, want) {
		t.Errorf("ListUsers: got %v, want %v", got, want)
	}
	if n, err := st.CountUsers(ctx); err != nil || n != len(names) {
		t.Errorf("CountUsers: got %d, %v, want %d, nil", n, err, len(names))
	}
}

func checkToken(t *testing.T, what string, got, want users.Token) {
	t.Helper()
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range gv.NumField() {
		g, w := gv.Field(i).Interface(), wv.Field(i).Interface()
		if !equalField(g, w) {
			t.Errorf("%s: %s: got %s, want %s", what, gv.Type().Field(i).Name, show(g), show(w))
		}
	}
}

func token(n byte, user, kind string, expires time.Time) users.Token {
	return users.Token{Hash: hashOf(n), User: user, Kind: kind, CreatedAt: base, ExpiresAt: expires}
}

func mustToken(t *testing.T, st users.Store, toks ...users.Token) {
	t.Helper()
	for _, tok := range toks {
		if err := st.CreateToken(context.Background(), tok); err != nil {
			t.Fatalf("CreateToken(%s %s): %v", tok.User, tok.Kind, err)
		}
	}
}

func tokenGone(t *testing.T, st users.Store, h [32]byte) bool {
	t.Helper()
	_, err := st.GetToken(context.Background(), h)
	if err != nil && !errors.Is(err, users.ErrNotFound) {
		t.Fatalf("GetToken: got %v, want nil or ErrNotFound", err)
	}
	return err != nil
}

func testTokenRoundTrip(t *testing.T, st users.Store) {
	ctx := context.Background()
	mustCreate(t, st, fullUser("alice"))
	toks := []users.Token{
		{Hash: hashOf(1), User: "alice", Kind: users.KindAPI, CreatedAt: base, ExpiresAt: base.Add(8*time.Hour + 1*time.Microsecond)},
		{Hash: hashOf(2), User: "alice", Kind: users.KindEnroll, CreatedAt: base.Add(time.Microsecond), ExpiresAt: base.Add(24 * time.Hour)},
		{Hash: [32]byte{}, User: "alice", Kind: users.KindAPI, CreatedAt: base, ExpiresAt: base.Add(time.Hour)},
		{Hash: [32]byte{31: 0xff}, User: "alice", Kind: "future-kind", ExpiresAt: base.Add(time.Hour)},
	}
	mustToken(t, st, toks...)
	for i, want := range toks {
		got, err := st.GetToken(ctx, want.Hash)
		if err != nil {
			t.Fatalf("GetToken(%d): %v", i, err)
		}
		checkToken(t, fmt.Sprintf("token %d", i), got, want)
	}
	if _, err := st.GetToken(ctx, hashOf(3)); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("GetToken(unknown): got %v, want ErrNotFound", err)
	}
	near := hashOf(1)
	near[31] ^= 1
	if _, err := st.GetToken(ctx, near); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("GetToken(near miss): got %v, want ErrNotFound", err)
	}
}

func testTokenExists(t *testing.T, st users.Store) {
	ctx := context.Background()
	mustCreate(t, st, fullUser("alice"), fullUser("bob"))
	first := token(1, "alice", users.KindAPI, base.Add(time.Hour))
	mustToken(t, st, first)
	second := token(1, "bob", users.KindEnroll, base.Add(2*time.Hour))
	if err := st.CreateToken(ctx, second); !errors.Is(err, users.ErrExists) {
		t.Fatalf("CreateToken(duplicate hash): got %v, want ErrExists", err)
	}
	got, err := st.GetToken(ctx, first.Hash)
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	checkToken(t, "after duplicate", got, first)
}

func testTokenDeleteOnce(t *testing.T, st users.Store) {
	ctx := context.Background()
	mustCreate(t, st, fullUser("alice"))
	a, b := token(1, "alice", users.KindEnroll, base.Add(time.Hour)), token(2, "alice", users.KindEnroll, base.Add(time.Hour))
	mustToken(t, st, a, b)
	if err := st.DeleteToken(ctx, a.Hash); err != nil {
		t.Fatalf("DeleteToken: %v", err)
	}
	if err := st.DeleteToken(ctx, a.Hash); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("second DeleteToken: got %v, want ErrNotFound", err)
	}
	if !tokenGone(t, st, a.Hash) {
		t.Errorf("GetToken after delete: token still there")
	}
	if tokenGone(t, st, b.Hash) {
		t.Errorf("GetToken of the other token: gone, want it kept")
	}
	if err := st.DeleteToken(ctx, hashOf(9)); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("DeleteToken(never stored): got %v, want ErrNotFound", err)
	}
}

func testTokenDeleteConcurrent(t *testing.T, st users.Store) {
	// An enrollment link is used once: of concurrent deletes, exactly one
	// succeeds.
	ctx := context.Background()
	mustCreate(t, st, fullUser("alice"))
	for round := range 5 {
		tok := token(byte(round+1), "alice", users.KindEnroll, base.Add(time.Hour))
		mustToken(t, st, tok)
		const deleters = 8
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex // guards ok, gone, other
			ok    int
			gone  int
			other []error
		)
		for range deleters {
			wg.Go(func() {
				err := st.DeleteToken(ctx, tok.Hash)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, users.ErrNotFound):
					gone++
				default:
					other = append(other, err)
				}
			})
		}
		wg.Wait()
		for _, err := range other {
			t.Errorf("DeleteToken: got %v, want nil or ErrNotFound", err)
		}
		if ok != 1 || gone != deleters-1 {
			t.Errorf("round %d: %d concurrent deletes: got %d successes, %d not found, want 1 and %d", round, deleters, ok, gone, deleters-1)
		}
	}
}

func testDeleteUserTokens(t *testing.T, st users.Store) {
	ctx := context.Background()
	mustCreate(t, st, fullUser("alice"), fullUser("bob"))
	exp := base.Add(time.Hour)
	toks := map[string]users.Token{
		"alice-api-1":  token(1, "alice", users.KindAPI, exp),
		"alice-api-2":  token(2, "alice", users.KindAPI, exp),
		"alice-enroll": token(3, "alice", users.KindEnroll, exp),
		"bob-api":      token(4, "bob", users.KindAPI, exp),
		"bob-enroll":   token(5, "bob", users.KindEnroll, exp),
	}
	for _, tok := range toks {
		mustToken(t, st, tok)
	}
	steps := []struct {
		user, kind string
		gone       []string // every token gone after this step
	}{
		{"alice", users.KindAPI, []string{"alice-api-1", "alice-api-2"}},
		{"carol", "", []string{"alice-api-1", "alice-api-2"}},
		{"alice", users.KindAPI, []string{"alice-api-1", "alice-api-2"}},
		{"bob", "", []string{"alice-api-1", "alice-api-2", "bob-api", "bob-enroll"}},
		{"alice", "", []string{"alice-api-1", "alice-api-2", "alice-enroll", "bob-api", "bob-enroll"}},
	}
	for i, step := range steps {
		if err := st.DeleteUserTokens(ctx, step.user, step.kind); err != nil {
			t.Fatalf("step %d: DeleteUserTokens(%q, %q): %v", i, step.user, step.kind, err)
		}
		for name, tok := range toks {
			want := slices.Contains(step.gone, name)
			if got := tokenGone(t, st, tok.Hash); got != want {
				t.Errorf("step %d: after DeleteUserTokens(%q, %q): %s gone: got %v, want %v", i, step.user, step.kind, name, got, want)
			}
		}
	}
}

func testDeleteExpired(t *testing.T, st users.Store) {
	ctx := context.Background()
	mustCreate(t, st, fullUser("alice"))
	now := base.Add(time.Hour)
	toks := []struct {
		tok     users.Token
		expired bool
	}{
		{token(1, "alice", users.KindAPI, now.Add(-time.Hour)), true},
		{token(2, "alice", users.KindEnroll, now.Add(-time.Microsecond)), true},
		{token(3, "alice", users.KindAPI, now), false}, // expires exactly now: not before now
		{token(4, "alice", users.KindAPI, now.Add(time.Microsecond)), false},
		{token(5, "alice", users.KindEnroll, now.Add(24*time.Hour)), false},
	}
	for _, tt := range toks {
		mustToken(t, st, tt.tok)
	}
	n, err := st.DeleteExpiredTokens(ctx, now)
	if err != nil {
		t.Fatalf("DeleteExpiredTokens: %v", err)
	}
	if n != 2 {
		t.Errorf("DeleteExpiredTokens: got %d removed, want 2", n)
	}
	for i, tt := range toks {
		if got := tokenGone(t, st, tt.tok.Hash); got != tt.expired {
			t.Errorf("token %d expiring %v: gone %v, want %v", i, tt.tok.ExpiresAt.Sub(now), got, tt.expired)
		}
	}
	n, err = st.DeleteExpiredTokens(ctx, now)
	if err != nil || n != 0 {
		t.Errorf("second DeleteExpiredTokens: got %d, %v, want 0, nil", n, err)
	}
	// The same instant in another zone is the same now.
	n, err = st.DeleteExpiredTokens(ctx, now.Add(time.Microsecond).In(time.FixedZone("X", 9*3600)))
	if err != nil || n != 1 {
		t.Errorf("DeleteExpiredTokens(now+1µs, zoned): got %d, %v, want 1, nil", n, err)
	}
}
