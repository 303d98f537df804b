package gateway_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"supportgate/gateway/identity"
)

// wantAccess is the access matrix of DESIGN.md section 1, route by route.
// A route missing here, or here but not served, fails the test: adding a
// route means deciding who may call it. Parts of the gateway in other files
// add their rows with addAccess from an init function.
var wantAccess = map[string]string{}

func addAccess(rows map[string]string) {
	for k, v := range rows {
		if _, dup := wantAccess[k]; dup {
			panic("duplicate access row " + k)
		}
		wantAccess[k] = v
	}
}

func init() { addAccess(coreAccess) }

var coreAccess = map[string]string{
	"GET /healthz":                           "public",
	"GET /metrics":                           "public",
	"POST /api/v1/login":                     "public",
	"GET /api/v1/enroll/{token}":             "public",
	"POST /api/v1/enroll/{token}":            "public",
	"POST /api/v1/logout":                    "agent supervisor auditor admin",
	"GET /api/v1/me":                         "agent supervisor auditor admin",
	"GET /api/v1/sessions":                   "agent supervisor auditor",
	"POST /api/v1/sessions":                  "agent supervisor",
	"GET /api/v1/sessions/watch":             "agent supervisor",
	"GET /api/v1/sessions/{id}":              "agent supervisor auditor",
	"POST /api/v1/sessions/{id}/revoke":      "agent supervisor",
	"POST /api/v1/sessions/{id}/extend":      "agent supervisor",
	"GET /api/v1/consent/{token}":            "customer",
	"POST /api/v1/consent/{token}/approve":   "customer",
	"POST /api/v1/consent/{token}/deny":      "customer",
	"POST /api/v1/consent/{token}/revoke":    "customer",
	"POST /api/v1/consent/{token}/handoff":   "customer",
	"POST /api/v1/consent/{token}/extension": "customer",
	"GET /api/v1/consent/{token}/watch":      "customer",
	"GET /api/v1/users":                      "admin",
	"POST /api/v1/users":                     "admin",
	"POST /api/v1/users/{name}":              "admin",
	"POST /api/v1/users/{name}/lock":         "admin",
	"POST /api/v1/users/{name}/unlock":       "admin",
	"POST /api/v1/users/{name}/reenroll":     "admin",
	"GET /api/v1/audit":                      "auditor",
	"GET /api/v1/audit/verify":               "auditor",
}

// TestRouteAccess sends every route as every role and as nobody. Role
// routes must answer 401 without a token and 403 to a role outside their
// list, and must not refuse the roles in it; consent routes must refuse a
// request without a valid consent token whatever bearer it carries.
func TestRouteAccess(t *testing.T) {
	e := newEnv(t)
	alice := e.addUser("alice", identity.RoleAgent, "red")
	sup := e.addUser("sam", identity.RoleSupervisor, "red")
	aud := e.addUser("audrey", identity.RoleAuditor, "")
	adm := e.addUser("root", identity.RoleAdmin, "")
	e.addUser("target", identity.RoleAgent, "red")
	callers := []*struct {
		name string
		u    *testUser
	}{{"none", nil}, {"agent", alice}, {"supervisor", sup}, {"auditor", aud}, {"admin", adm}}

	routes := e.g.Routes()
	served := map[string]bool{}
	for _, rt := range routes {
		key := rt.Method + " " + rt.Pattern
		served[key] = true
		want, ok := wantAccess[key]
		if !ok {
			t.Errorf("route %s is served but has no row in the access matrix", key)
			continue
		}
		var got string
		switch {
		case rt.Public:
			got = "public"
		case rt.Consent:
			got = "customer"
		default:
			var names []string
			for _, r := range rt.Roles {
				names = append(names, string(r))
			}
			got = strings.Join(names, " ")
		}
		if got != want {
			t.Errorf("%s: admits %q, want %q", key, got, want)
		}
	}
	for key := range wantAccess {
		if !served[key] {
			t.Errorf("matrix row %s is not served", key)
		}
	}

	for _, rt := range routes {
		if rt.Public {
			continue
		}
		for _, c := range callers {
			name := fmt.Sprintf("%s %s as %s", rt.Method, rt.Pattern, c.name)
			path := rt.Pattern
			if strings.Contains(path, "{id}") {
				s := e.newSession(alice, []string{"view"}, "30m")
				path = strings.ReplaceAll(path, "{id}", s.ID)
			}
			path = strings.ReplaceAll(path, "{name}", "target")
			if rt.Consent {
				// A well-formed token that opens nothing.
				path = strings.ReplaceAll(path, "{token}", strings.Repeat("A", 43))
			}
			body := ""
			if rt.Method == "POST" {
				body = "{}"
			}
			code, data := e.send(nil, c.u, rt.Method, path, body)
			allowed := slices.ContainsFunc(rt.Roles, func(r identity.Role) bool { return c.u != nil && r == c.u.role })
			switch {
			case rt.Consent:
				if code != http.StatusNotFound && code != http.StatusForbidden && code != http.StatusTooManyRequests {
					t.Errorf("%s: got %d %s, want 404 or 403 for an unknown consent token", name, code, data)
				}
			case c.u == nil:
				if code != http.StatusUnauthorized {
					t.Errorf("%s: got %d %s, want 401", name, code, data)
				}
			case !allowed:
				if code != http.StatusForbidden {
					t.Errorf("%s: got %d %s, want 403", name, code, data)
				}
			default:
				if code == http.StatusUnauthorized || code == http.StatusForbidden || code >= 500 {
					t.Errorf("%s: got %d %s, want the role admitted", name, code, data)
				}
			}
			if rt.Pattern == "/api/v1/logout" && code == http.StatusOK {
				e.login(c.u)
			}
			if rt.Pattern == "/api/v1/users/{name}/lock" && code == http.StatusOK {
				e.do(adm, "POST", "/api/v1/users/target/unlock", "{}", 200, nil)
			}
		}
	}
}

// TestDenyByDefault: what no route names is refused, and paths are
// matched only in canonical form.
func TestDenyByDefault(t *testing.T) {
	e := newEnv(t)
	adm := e.addUser("root", identity.RoleAdmin, "")
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/", http.StatusNotFound},
		{"GET", "/api/v1/setup", http.StatusNotFound},
		{"POST", "/api/v1/bootstrap", http.StatusNotFound},
		{"GET", "/api/v2/users", http.StatusNotFound},
		{"GET", "/api/v1/users/", http.StatusBadRequest},
		{"GET", "/api/v1//users", http.StatusBadRequest},
		{"GET", "/api/v1/sessions/../users", http.StatusBadRequest},
		{"GET", "/api/v1/%2e%2e/v1/users", http.StatusBadRequest},
		{"GET", "/api/v1/users%2flock", http.StatusBadRequest},
		{"DELETE", "/api/v1/users", http.StatusMethodNotAllowed},
		{"PUT", "/api/v1/login", http.StatusMethodNotAllowed},
	} {
		code, data := e.send(nil, adm, c.method, c.path, nil)
		if code != c.want {
			t.Errorf("%s %s: got %d %s, want %d", c.method, c.path, code, data, c.want)
		}
		if !strings.Contains(string(data), `"error"`) {
			t.Errorf("%s %s: body %q is not a JSON error", c.method, c.path, data)
		}
	}
}
