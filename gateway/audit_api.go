package gateway

import (
	"errors"
	"net/http"

	"supportgate/gateway/audit"
)

// handleAuditExport streams the audit log as JSON lines. Reading it is
// itself audited, before the export starts.
func (g *Gateway) handleAuditExport(w http.ResponseWriter, r *http.Request, p *principal) {
	g.record(r.Context(), audit.Event{Type: "audit.exported", Actor: p.user.Name, Role: p.user.Role, Remote: clientAddr(r)})
	w.Header().Set("Content-Type", "application/x-ndjson")
	if err := audit.Export(r.Context(), g.store, w); err != nil {
		g.log.Error("audit export", "err", err)
	}
}

// handleAuditVerify checks the chain and its signatures.
func (g *Gateway) handleAuditVerify(w http.ResponseWriter, r *http.Request, p *principal) {
	g.record(r.Context(), audit.Event{Type: "audit.verified", Actor: p.user.Name, Role: p.user.Role, Remote: clientAddr(r)})
	rep, err := audit.Verify(r.Context(), g.store, g.keys.SigningPublic)
	var te *audit.TamperError
	if errors.As(err, &te) {
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": te.Error(), "report": rep})
		return
	}
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "report": rep})
}
