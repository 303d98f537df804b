package review

import (
	"crypto/ed25519"
	"fmt"

	"supportgate/gateway/audit"
)

// verifyAuditSlice checks a bundle's audit-log slice against the gateway
// key that signed the session's recording, which is also the key of the
// audit log's checkpoints, and that it is the slice of session.
func verifyAuditSlice(b []byte, session string, gatewayKey ed25519.PublicKey) (int, error) {
	rep, err := audit.VerifySlice(b, gatewayKey)
	if err != nil {
		return 0, err
	}
	if rep.Session != session {
		return 0, fmt.Errorf("the slice is of session %q, not %q", rep.Session, session)
	}
	return rep.Records, nil
}
