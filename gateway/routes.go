package gateway

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"supportgate/gateway/identity"
	"supportgate/gateway/users"
)

// access says who may call a route. Every route names its access; there is
// no default, and the catch-all answers 404.
type access struct {
	public   bool            // anyone (login, health, enrollment by one-time token)
	customer bool            // holder of a consent token (checked by the handler)
	roles    []identity.Role // authenticated users with one of these roles
}

var (
	public   = access{public: true}
	customer = access{customer: true}
)

func roles(r ...identity.Role) access { return access{roles: r} }

const (
	agent      = identity.RoleAgent
	supervisor = identity.RoleSupervisor
	auditor    = identity.RoleAuditor
	admin      = identity.RoleAdmin
)

var everyone = []identity.Role{agent, supervisor, auditor, admin}

// Route describes one API route, for the route table test.
type Route struct {
	Method  string
	Pattern string          // Go ServeMux pattern without the method
	Public  bool            // no authentication
	Consent bool            // authenticated by a consent token and client key
	Roles   []identity.Role // roles admitted, for authenticated routes
}

type route struct {
	method  string
	pattern string
	access  access
	handle  func(w http.ResponseWriter, r *http.Request, p *principal)
}

// principal is the authenticated caller of a role route.
type principal struct {
	user  *users.User
	role  identity.Role
	token users.Token
	// gen is the auth cache's generation when the token was looked up:
	// while it is the same, no user or token has been written since, so
	// nothing about this user (a sign-in reset, a lock) has changed.
	gen uint64
}

// routeSets are the route tables of the gateway's parts. Each part (the
// core API here, web pages, assist enrollment, alerts...) adds its own from
// an init function in its own file, so parts do not edit one shared list.
var routeSets = []func(g *Gateway) []route{(*Gateway).coreRoutes}

func (g *Gateway) routeTable() []route {
	var all []route
	for _, set := range routeSets {
		all = append(all, set(g)...)
	}
	return all
}

func (g *Gateway) coreRoutes() []route {
	return []route{
		{"GET", "/healthz", public, g.handleHealth},
		{"GET", "/metrics", public, g.handleMetrics},

		{"POST", "/api/v1/login", public, g.handleLogin},
		{"POST", "/api/v1/logout", roles(everyone...), g.handleLogout},
		{"GET", "/api/v1/me", roles(everyone...), g.handleMe},
		{"GET", "/api/v1/enroll/{token}", public, g.handleEnrollInfo},
		{"POST", "/api/v1/enroll/{token}", public, g.handleEnroll},

		{"GET", "/api/v1/sessions", roles(agent, supervisor, auditor), g.handleListSessions},
		{"POST", "/api/v1/sessions", roles(agent, supervisor), g.handleCreateSession},
		{"GET", "/api/v1/sessions/watch", roles(agent, supervisor), g.handleWatchSessions},
		{"GET", "/api/v1/sessions/{id}", roles(agent, supervisor, auditor), g.handleGetSession},
		{"POST", "/api/v1/sessions/{id}/revoke", roles(agent, supervisor), g.handleRevokeSession},
		{"POST", "/api/v1/sessions/{id}/extend", roles(agent, supervisor), g.handleExtendSession},

		{"GET", "/api/v1/consent/{token}", customer, g.handleConsentGet},
		{"POST", "/api/v1/consent/{token}/approve", customer, g.handleConsentApprove},
		{"POST", "/api/v1/consent/{token}/deny", customer, g.handleConsentDeny},
		{"POST", "/api/v1/consent/{token}/revoke", customer, g.handleConsentRevoke},
		{"POST", "/api/v1/consent/{token}/handoff", customer, g.handleConsentHandoff},
		{"POST", "/api/v1/consent/{token}/extension", customer, g.handleConsentExtension},
		{"GET", "/api/v1/consent/{token}/watch", customer, g.handleConsentWatch},

		{"GET", "/api/v1/users", roles(admin), g.handleListUsers},
		{"POST", "/api/v1/users", roles(admin), g.handleAddUser},
		{"POST", "/api/v1/users/{name}", roles(admin), g.handleUpdateUser},
		{"POST", "/api/v1/users/{name}/lock", roles(admin), g.handleLockUser},
		{"POST", "/api/v1/users/{name}/unlock", roles(admin), g.handleUnlockUser},
		{"POST", "/api/v1/users/{name}/reenroll", roles(admin), g.handleReenrollUser},

		{"GET", "/api/v1/audit", roles(auditor), g.handleAuditExport},
		{"GET", "/api/v1/audit/verify", roles(auditor), g.handleAuditVerify},
	}
}

// Routes lists the API routes and who may call them.
func (g *Gateway) Routes() []Route {
	var out []Route
	for _, rt := range g.routeTable() {
		out = append(out, Route{Method: rt.method, Pattern: rt.pattern, Public: rt.access.public,
			Consent: rt.access.customer, Roles: slices.Clone(rt.access.roles)})
	}
	return out
}

// routes builds the handler: every pattern dispatches on method itself so
// that a wrong method gets a JSON 405, and unknown paths a JSON 404.
func (g *Gateway) routes() http.Handler {
	mux := http.NewServeMux()
	byPattern := map[string][]route{}
	var order []string
	for _, rt := range g.routeTable() {
		if _, ok := byPattern[rt.pattern]; !ok {
			order = append(order, rt.pattern)
		}
		byPattern[rt.pattern] = append(byPattern[rt.pattern], rt)
	}
	for _, pattern := range order {
		rts := byPattern[pattern]
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			for _, rt := range rts {
				if rt.method == r.Method || (rt.method == "GET" && r.Method == "HEAD") {
					g.serveRoute(w, r, rt)
					return
				}
			}
			var allow []string
			for _, rt := range rts {
				allow = append(allow, rt.method)
			}
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method not allowed"})
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
	})
	return g.dated(secure(g.withClient(mux)))
}

// serveRoute authenticates and authorises the caller, then runs the handler.
func (g *Gateway) serveRoute(w http.ResponseWriter, r *http.Request, rt route) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		if v := recover(); v != nil {
			g.log.Error("handler panic", "route", rt.pattern, "panic", v)
			if sw.code == 0 {
				writeJSON(sw, http.StatusInternalServerError, map[string]string{"error": "internal error"})
			}
		}
		g.metrics.observe(rt.method+" "+rt.pattern, sw.code, time.Since(start))
	}()
	var p *principal
	if len(rt.access.roles) > 0 {
		var err error
		if p, err = g.authenticateRoute(r); err != nil {
			g.writeErr(sw, r, err)
			return
		}
		if !slices.Contains(rt.access.roles, p.role) {
			g.writeErr(sw, r, errorf(http.StatusForbidden, "role %s may not do this", p.role))
			return
		}
	} else if !rt.access.public && !rt.access.customer {
		g.writeErr(sw, r, errorf(http.StatusForbidden, "forbidden"))
		return
	}
	rt.handle(sw, r, p)
}

// handleHealth answers ok, or 503 while some session's end is not stored:
// the gateway enforces it, but a restart now would open the session again,
// and the store is failing (a full disk, most likely). It reads nothing
// from the store, so that a probe costs a probe.
func (g *Gateway) handleHealth(w http.ResponseWriter, r *http.Request, _ *principal) {
	if n := g.broker.UnsavedEnds(); n > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unhealthy",
			"problem": fmt.Sprintf("%d ended sessions could not be stored (is the disk full?); they would be open again after a restart", n)})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (g *Gateway) handleMetrics(w http.ResponseWriter, r *http.Request, _ *principal) {
	g.metrics.handler.ServeHTTP(w, r)
}
