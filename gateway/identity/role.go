package identity

import (
	"errors"
	"fmt"
)

// Role is what a staff account may do (DESIGN.md section 1). Customers have
// no account and therefore no Role.
type Role string

// The staff roles.
const (
	RoleAgent      Role = "agent"
	RoleSupervisor Role = "supervisor"
	RoleAuditor    Role = "auditor"
	RoleAdmin      Role = "admin"
)

// ErrUnknownRole is returned by ParseRole for a name that is not a role.
var ErrUnknownRole = errors.New("identity: unknown role")

// Roles returns every role, in order of the table in DESIGN.md.
func Roles() []Role {
	return []Role{RoleAgent, RoleSupervisor, RoleAuditor, RoleAdmin}
}

// ParseRole returns the role named exactly s (lowercase, no spaces).
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if !r.Valid() {
		return "", fmt.Errorf("%w %q (want agent, supervisor, auditor or admin)", ErrUnknownRole, s)
	}
	return r, nil
}

// Valid reports whether r is one of the defined roles.
func (r Role) Valid() bool {
	switch r {
	case RoleAgent, RoleSupervisor, RoleAuditor, RoleAdmin:
		return true
	}
	return false
}

// String returns the role's name.
func (r Role) String() string { return string(r) }
