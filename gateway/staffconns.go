package gateway

import (
	"context"
	"errors"
	"net/http"
	"sync"

	"supportgate/gateway/users"
)

// Staff websockets (the session feed and the screen-share viewer) are
// authenticated once, when they open, and then run for hours. So that
// they end with the access that admitted them, each serves under a context
// from openStaffConn, which this file cancels when the user is locked or
// their role or team changes (dropUser), when the login that opened the
// socket is signed out (dropToken) and when its token expires.

// maxWatchPerUser bounds one user's session feeds: a page needs one, and a
// few tabs and a CLI fit, but one account must not take all maxWatchers.
const maxWatchPerUser = 8

// Causes of a staff socket's end, for logs and the close frame.
var (
	errAccountLocked = errors.New("account locked")
	errAccessChanged = errors.New("role or team changed")
	errSignInReset   = errors.New("sign-in reset by an admin")
	errLoggedOut     = errors.New("signed out")
	errTokenExpired  = errors.New("login expired")
)

// staffConns is the registry of open staff websockets by user name.
type staffConns struct {
	mu     sync.Mutex // guards byUser
	byUser map[string]*staffUser
}

// staffUser is one user's open staff websockets.
type staffUser struct {
	conns   map[*staffConn]struct{}
	watches int // conns that are session feeds, capped at maxWatchPerUser
}

// staffConn is one open staff websocket.
type staffConn struct {
	token  [32]byte // hash of the token that opened it
	watch  bool     // a session feed
	cancel context.CancelCauseFunc
}

// add registers c for user; it refuses a session feed past
// maxWatchPerUser.
func (sc *staffConns) add(user string, c *staffConn) error {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	su := sc.byUser[user]
	if su == nil {
		su = &staffUser{conns: map[*staffConn]struct{}{}}
	}
	if c.watch && su.watches >= maxWatchPerUser {
		return errorf(http.StatusTooManyRequests, "too many live connections for one user (at most %d); close another tab", maxWatchPerUser)
	}
	if c.watch {
		su.watches++
	}
	su.conns[c] = struct{}{}
	if sc.byUser == nil {
		sc.byUser = map[string]*staffUser{}
	}
	sc.byUser[user] = su
	return nil
}

// remove forgets c; removing it twice is harmless.
func (sc *staffConns) remove(user string, c *staffConn) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	su := sc.byUser[user]
	if su == nil {
		return
	}
	if _, ok := su.conns[c]; !ok {
		return
	}
	delete(su.conns, c)
	if c.watch {
		su.watches--
	}
	if len(su.conns) == 0 {
		delete(sc.byUser, user)
	}
}

// drop ends every staff websocket of user and returns how many it ended.
// They stay registered until their handlers return and remove them.
func (sc *staffConns) drop(user string, cause error) int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	su := sc.byUser[user]
	if su == nil {
		return 0
	}
	for c := range su.conns {
		c.cancel(cause)
	}
	return len(su.conns)
}

// dropToken ends every staff websocket opened with the token of hash h.
// It scans all users: logouts are rare, and a second index would have to
// be kept in step with the first.
func (sc *staffConns) dropToken(h [32]byte, cause error) int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	n := 0
	for _, su := range sc.byUser {
		for c := range su.conns {
			if c.token == h {
				c.cancel(cause)
				n++
			}
		}
	}
	return n
}

// openStaffConn registers a staff websocket of p before its upgrade and
// returns the context it must serve under, done when p's access ends,
// and the release the handler calls (deferred) when the socket is gone.
// watch marks a session feed, which counts against maxWatchPerUser.
func (g *Gateway) openStaffConn(ctx context.Context, p *principal, watch bool) (context.Context, func(), error) {
	ctx, cancel := context.WithCancelCause(ctx)
	c := &staffConn{token: p.token.Hash, watch: watch, cancel: cancel}
	if err := g.staff.add(p.user.Name, c); err != nil {
		cancel(nil)
		return nil, nil, err
	}
	// The timer's callback only cancels a context, so nothing needs to
	// wait for it; release stops it.
	expiry := g.clock.AfterFunc(p.token.ExpiresAt.Sub(g.clock.Now()), func() { cancel(errTokenExpired) })
	release := func() {
		expiry.Stop()
		g.staff.remove(p.user.Name, c)
		cancel(nil)
	}
	// p was resolved before c was registered, so a lock or logout in
	// between cut nothing: look again now that any later one will.
	if err := g.recheckPrincipal(ctx, p); err != nil {
		release()
		return nil, nil, err
	}
	return ctx, release, nil
}

// recheckPrincipal reports an error if p's token or account, read from
// the store rather than the auth cache, no longer grants what p says.
func (g *Gateway) recheckPrincipal(ctx context.Context, p *principal) error {
	t, err := g.store.GetToken(ctx, p.token.Hash)
	if errors.Is(err, users.ErrNotFound) {
		return errorf(http.StatusUnauthorized, "unknown or revoked token; run supportgate login")
	}
	if err != nil {
		return err
	}
	if !g.clock.Now().Before(t.ExpiresAt) {
		return errorf(http.StatusUnauthorized, "token expired; run supportgate login")
	}
	u, err := g.store.GetUser(ctx, p.user.Name)
	if errors.Is(err, users.ErrNotFound) {
		return errorf(http.StatusUnauthorized, "unknown or revoked token; run supportgate login")
	}
	if err != nil {
		return err
	}
	if u.Disabled {
		return errorf(http.StatusForbidden, "account is locked by an administrator")
	}
	if u.Role != p.user.Role || u.Team != p.user.Team {
		return errorf(http.StatusConflict, "the account changed while connecting; connect again")
	}
	return nil
}

// userAccessEnded ends what user holds open beyond single requests, after
// their account was locked or their role or team changed (why): their
// staff websockets here, and through OnUserDropped whatever the caller
// serves (their SSH connections).
func (g *Gateway) userAccessEnded(user string, why error) {
	if n := g.staff.drop(user, why); n > 0 {
		g.log.Info("staff connections ended", "user", user, "count", n, "why", why.Error())
	}
	if g.onUserDropped != nil {
		g.onUserDropped(user)
	}
}

// loginEnded ends what the login whose token has hash h holds open beyond
// single requests, after its token was deleted (why: signed out): its staff
// websockets here, and through OnLoginDropped whatever the caller serves
// for it (its SSH connections). Other logins of the same user keep theirs.
// It holds no lock while the caller's hook runs.
func (g *Gateway) loginEnded(h [32]byte, why error) {
	if n := g.staff.dropToken(h, why); n > 0 {
		g.log.Info("staff connections ended", "count", n, "why", why.Error())
	}
	if g.onLoginDropped != nil {
		g.onLoginDropped(users.LoginID(h))
	}
}

// accessEndedReason is what a staff socket's close frame says when access
// ended: the cause set by drop, dropToken or the expiry timer.
func accessEndedReason(ctx context.Context) string {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause.Error()
	}
	return "access ended"
}
