package sessiontest

import (
	"testing"

	"supportgate/session"
)

func TestMemStore(t *testing.T) {
	RunStoreTests(t, func(t *testing.T) session.Store { return NewMemStore() })
}
