package audittest_test

import (
	"testing"

	"supportgate/gateway/audit"
	"supportgate/gateway/audit/audittest"
)

func TestStore(t *testing.T) {
	audittest.RunStoreTests(t, func(*testing.T) audit.Store { return audittest.NewStore() })
}
