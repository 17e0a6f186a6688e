package auth

import (
	"fmt"
	"slices"
)

// Policy maps roles to permissions and grants roles to certificate identities
// (bindings). A token names its own roles, so bindings never apply to a
// principal from a token: a JWT whose sub is a bound identity gains nothing.
type Policy struct {
	roles    map[string][]Permission
	bindings map[string][]string
}

// NewPolicy checks and compiles the roles and bindings of cfg.
func NewPolicy(cfg RBACConfig) (*Policy, error) {
	p := &Policy{roles: map[string][]Permission{}, bindings: map[string][]string{}}
	for role, perms := range cfg.Roles {
		if role == "" {
			return nil, fmt.Errorf("auth: rbac: a role has an empty name")
		}
		for _, s := range perms {
			perm, err := ParsePermission(s)
			if err != nil {
				return nil, fmt.Errorf("auth: rbac: role %s: %w", role, err)
			}
			p.roles[role] = append(p.roles[role], perm)
		}
	}
	for subject, roles := range cfg.Bindings {
		p.bindings[subject] = slices.Clone(roles)
	}
	return p, nil
}

// bound returns the roles bound to pr's certificate identity.
func (p *Policy) bound(pr *Principal) []string {
	if pr == nil || pr.Source != SourceMTLS {
		return nil
	}
	return p.bindings[pr.Subject]
}

// Roles returns pr's roles: those it carries and, for a certificate identity,
// those bound to it.
func (p *Policy) Roles(pr *Principal) []string {
	if pr == nil {
		return nil
	}
	bound := p.bound(pr)
	if len(bound) == 0 {
		return pr.Roles
	}
	return appendNew(slices.Clone(pr.Roles), bound...)
}

// HasRole reports whether pr has role, carried or bound.
func (p *Policy) HasRole(pr *Principal, role string) bool {
	return pr != nil && (slices.Contains(pr.Roles, role) || slices.Contains(p.bound(pr), role))
}

// Granted reports whether any of pr's roles grants want.
func (p *Policy) Granted(pr *Principal, want Permission) bool {
	for _, role := range p.Roles(pr) {
		for _, held := range p.roles[role] {
			if held.Grants(want) {
				return true
			}
		}
	}
	return false
}
