package gateway

import (
	"context"
	"net"
	"net/http"
	"net/netip"
)

// clientKey is the request context key of the client's address when it
// is not the TCP peer's (withClient).
type clientKey struct{}

// withClient finds the client's address of each request that came
// through a trusted reverse proxy (Config.TrustedProxies) and notes it in
// the request's context for clientAddr. Without trusted proxies it adds
// nothing to a request.
func (g *Gateway) withClient(next http.Handler) http.Handler {
	if g.proxies == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil {
			next.ServeHTTP(w, r)
			return
		}
		if client, ok := g.proxies.Client(peer.Addr(), r.Header); ok {
			r = r.WithContext(context.WithValue(r.Context(), clientKey{}, client.String()))
		}
		next.ServeHTTP(w, r)
	})
}

// clientAddr is the caller's IP address, for rate limits, lockouts, the
// audit log and presence: the TCP peer's, or the one a trusted reverse
// proxy forwarded (withClient). Every user of the client's address asks
// here; nothing else in the gateway reads r.RemoteAddr.
func clientAddr(r *http.Request) string {
	if a, ok := r.Context().Value(clientKey{}).(string); ok {
		return a
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
