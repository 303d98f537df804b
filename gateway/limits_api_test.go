package gateway_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestLimitsGroupIPv6 sends requests straight to the handler from chosen
// addresses: each per-address limit counts an IPv6 /64 as one client, so
// rotating addresses inside it gains nothing, while another /64 or an
// IPv4 address has a limit of its own.
func TestLimitsGroupIPv6(t *testing.T) {
	e := newEnv(t)
	h := e.g.Handler()
	send := func(method, path, body, ip string) int {
		r := httptest.NewRequest(method, "https://gateway.test"+path, strings.NewReader(body))
		r.RemoteAddr = "[" + ip + "]:40000"
		if !strings.Contains(ip, ":") {
			r.RemoteAddr = ip + ":40000"
		}
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	tests := []struct {
		name, method, path, body string
		burst                    int
	}{
		{"login", "POST", "/api/v1/login", "not json", 10},
		{"enroll", "GET", "/api/v1/enroll/nosuchlink", "", 5},
		{"probe", "GET", "/api/v1/consent/nosuchlink", "", 20},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := fmt.Sprintf("2001:db8:%x:", i+1)
			for j := range tt.burst {
				ip := fmt.Sprintf("%s1:%x::1", prefix, j+1) // another address of the same /64 each time
				if got := send(tt.method, tt.path, tt.body, ip); got == http.StatusTooManyRequests {
					t.Fatalf("request %d from %s: got %d, want it let through", j, ip, got)
				}
			}
			for _, c := range []struct {
				ip   string
				want bool // throttled
			}{
				{prefix + "1:ffff:ffff:ffff:ffff", true},
				{prefix + "2::1", false},
				{fmt.Sprintf("192.0.2.%d", i+1), false},
			} {
				got := send(tt.method, tt.path, tt.body, c.ip) == http.StatusTooManyRequests
				if got != c.want {
					t.Errorf("from %s: got throttled %v, want %v", c.ip, got, c.want)
				}
			}
		})
	}
}
