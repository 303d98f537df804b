package userstest

import (
	"testing"

	"supportgate/gateway/users"
)

func TestMemStore(t *testing.T) {
	RunStoreTests(t, func(t *testing.T) users.Store { return NewMemStore() })
}
