package gateway

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"supportgate/gateway/audit"
	"supportgate/gateway/wghub"
	"supportgate/session"
)

// Assist enrollment: the customer-side helper (supportgate-assist) opens
// the consent link like a browser (GET /api/v1/consent/TOKEN binds it and
// hands out the CSRF token), approves, then enrolls its WireGuard key and
// SSH host key here with the same cookie and CSRF token. The answer is
// what it needs to bring its tunnel up. A session enrolls once.

func init() { routeSets = append(routeSets, (*Gateway).assistRoutes) }

func (g *Gateway) assistRoutes() []route {
	return []route{
		{"POST", "/api/v1/assist/enroll", customer, g.handleAssistEnroll},
	}
}

// startWireGuard starts the hub when the gateway was given a socket.
func (g *Gateway) startWireGuard(cfg Config) error {
	if cfg.WireGuard == nil {
		return nil
	}
	endpoint := cfg.WireGuardEndpoint
	if endpoint == "" {
		return errors.New("gateway: Config.WireGuardEndpoint is required with Config.WireGuard")
	}
	hub, err := wghub.New(wghub.Config{
		PrivateKey: cfg.Keys.WireGuardPrivate, Conn: cfg.WireGuard, Endpoint: endpoint,
		Sessions: g.broker, Logger: g.log,
	})
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	g.wg = hub
	return nil
}

// helperStore keeps the helpers that sessions enrolled, so that a restarted
// gateway takes their tunnels back. The SQLite store is one; without it,
// helpers of active sessions must be started again after a restart.
type helperStore interface {
	SaveHelperEnrollment(ctx context.Context, e session.HelperEnrollment) error
	HelperEnrollments(ctx context.Context) ([]session.HelperEnrollment, error)
	DeleteHelperEnrollments(ctx context.Context, ids []string) error
}

// restoreHelpers puts the helpers of sessions still active back into the
// hub, at the addresses they had, and forgets those of ended sessions. A
// helper that cannot be restored is logged and audited; its customer can
// start it again.
func (g *Gateway) restoreHelpers(ctx context.Context) error {
	if g.wg == nil || g.helpers == nil {
		return nil
	}
	saved, err := g.helpers.HelperEnrollments(ctx)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	var stale []string
	for _, e := range saved {
		s, err := g.broker.Get(ctx, e.SessionID)
		if err != nil || s.State != session.Active {
			stale = append(stale, e.SessionID)
			continue
		}
		hk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(e.SSHHostKey))
		if err == nil {
			err = g.wg.Restore(e.SessionID, e.WireGuardKey, hk, e.Address)
		}
		ev := audit.Event{Type: "assist.restored", Actor: "system", Role: "system", Session: e.SessionID,
			Detail: map[string]string{"address": e.Address.String(), "wg_pubkey": wghub.FormatKey(e.WireGuardKey)}}
		if err != nil {
			g.log.Error("restoring a helper", "session", e.SessionID, "err", err)
			ev.Type, ev.Detail["error"] = "assist.restore_failed", err.Error()
		}
		g.record(ctx, ev)
	}
	if err := g.helpers.DeleteHelperEnrollments(ctx, stale); err != nil {
		g.log.Error("forgetting helpers of ended sessions", "err", err)
	}
	return nil
}

// WireGuard is the WireGuard hub, or nil when the gateway runs without one.
// The SSH bastion dials helpers through it.
func (g *Gateway) WireGuard() *wghub.Hub { return g.wg }

// AssistEnrollRequest is the body of POST /api/v1/assist/enroll.
type AssistEnrollRequest struct {
	Token        string `json:"consent_token"`
	WireGuardKey string `json:"wireguard_public_key"` // base64, as wg(8) prints it
	SSHHostKey   string `json:"ssh_host_key"`         // authorized_keys format
}

// AssistEnrollment is the answer: everything the helper needs for its
// tunnel and to recognise the gateway on it.
type AssistEnrollment struct {
	Session         string         `json:"session"`
	GatewayKey      string         `json:"gateway_public_key"`
	Endpoint        string         `json:"endpoint"`
	Address         string         `json:"address"`         // the helper's, as a /32
	GatewayAddress  string         `json:"gateway_address"` // the only peer address on the tunnel
	SSHPort         uint16         `json:"ssh_port"`
	GatewaySSHKey   string         `json:"gateway_ssh_key"` // the only client key the helper's SSH server accepts
	Scopes          session.Scopes `json:"scopes"`
	ExpiresAt       time.Time      `json:"expires_at"`
	KeepaliveSecond int            `json:"persistent_keepalive"`
}

func (g *Gateway) handleAssistEnroll(w http.ResponseWriter, r *http.Request, _ *principal) {
	// CSRF first, before the body is even read: the header must be the
	// token of one of this client's consent-link cookies (it is an HMAC of
	// the client key, so a key that passes was issued by this gateway).
	var bound *http.Cookie
	for _, c := range r.Cookies() {
		if !strings.HasPrefix(c.Name, "__Host-sgc_") {
			continue
		}
		if _, err := g.checkCSRF(r, c.Value); err == nil {
			bound = c
			break
		}
	}
	if bound == nil {
		g.writeErr(w, r, errorf(http.StatusForbidden, "missing or invalid CSRF token; open the link first (GET /api/v1/consent/TOKEN) with this client"))
		return
	}
	var req AssistEnrollRequest
	if err := decodeJSON(w, r, &req); err != nil {
		g.writeErr(w, r, err)
		return
	}
	remote := clientAddr(r)
	if !g.limits.peek(probeLimit, "probe:"+limitAddr(remote)) {
		g.writeErr(w, r, errorf(http.StatusTooManyRequests, "too many requests for unknown links; wait a minute"))
		return
	}
	th, err := session.ParseToken(req.Token)
	if err != nil {
		g.consentErr(w, r, session.ErrNotFound)
		return
	}
	if !g.limits.allow(consentLimit, "consent:"+hex.EncodeToString(th[:16])) {
		g.writeErr(w, r, errorf(http.StatusTooManyRequests, "too many requests; wait a moment"))
		return
	}
	if bound.Name != clientCookie(req.Token) {
		g.writeErr(w, r, errorf(http.StatusForbidden, "this link was not opened by this client"))
		return
	}
	c := bound
	wgKey, err := wghub.ParseKey(req.WireGuardKey)
	if err != nil {
		g.writeErr(w, r, errorf(http.StatusBadRequest, "wireguard_public_key must be a base64 Curve25519 key"))
		return
	}
	hostKey, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(req.SSHHostKey))
	if err != nil || len(rest) != 0 {
		g.writeErr(w, r, errorf(http.StatusBadRequest, "ssh_host_key must be one public key in authorized_keys format"))
		return
	}
	by := customerActor(r)
	s, newKey, err := g.broker.Open(r.Context(), req.Token, c.Value, by)
	if err == nil && newKey != "" {
		err = session.ErrBoundElsewhere // the cookie belonged to another link
	}
	if err != nil {
		g.consentErr(w, r, err)
		return
	}
	switch {
	case s.State != session.Active:
		g.writeErr(w, r, errorf(http.StatusConflict, "session is %s; approve it before enrolling", s.State))
		return
	case !s.Scopes.Has(session.Shell) && !s.Scopes.Has(session.Tunnel):
		g.writeErr(w, r, errorf(http.StatusForbidden, "session grants neither shell nor tunnel"))
		return
	}
	if g.wg == nil {
		g.writeErr(w, r, errorf(http.StatusServiceUnavailable, "this gateway runs no WireGuard hub"))
		return
	}
	en, err := g.wg.Enroll(s.ID, wgKey, hostKey)
	switch {
	case errors.Is(err, wghub.ErrAlreadyEnrolled):
		err = errorf(http.StatusConflict, "this session already enrolled a helper")
	case errors.Is(err, wghub.ErrKeyInUse):
		err = errorf(http.StatusConflict, "this WireGuard key is in use; generate a new one")
	case errors.Is(err, wghub.ErrFull):
		err = errorf(http.StatusServiceUnavailable, "no free tunnel address")
	}
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	if g.helpers != nil {
		err := g.helpers.SaveHelperEnrollment(r.Context(), session.HelperEnrollment{
			SessionID: s.ID, WireGuardKey: wgKey, SSHHostKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hostKey))),
			Address: en.Address, At: g.clock.Now(),
		})
		if err != nil {
			// A tunnel a restart would silently drop is not offered.
			g.wg.Remove(s.ID)
			g.writeErr(w, r, fmt.Errorf("storing the enrollment: %w", err))
			return
		}
	}
	g.record(r.Context(), audit.Event{
		Type: "assist.enrolled", Actor: by.Name, Role: by.Role, Session: s.ID, Remote: by.Remote,
		Detail: map[string]string{
			"address":   en.Address.String(),
			"wg_pubkey": wghub.FormatKey(wgKey),
			"ssh_fp":    ssh.FingerprintSHA256(hostKey),
		},
	})
	writeJSON(w, http.StatusOK, AssistEnrollment{
		Session:        s.ID,
		GatewayKey:     wghub.FormatKey(en.GatewayKey),
		Endpoint:       en.Endpoint,
		Address:        en.Address.String() + "/32",
		GatewayAddress: en.GatewayAddress.String(),
		SSHPort:        en.SSHPort,
		GatewaySSHKey:  string(ssh.MarshalAuthorizedKey(g.keys.SSHHostKey.PublicKey())),
		Scopes:         s.Scopes, ExpiresAt: s.ExpiresAt, KeepaliveSecond: 25,
	})
}
