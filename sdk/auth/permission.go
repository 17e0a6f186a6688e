package auth

import (
	"fmt"
	"strings"
)

// Permission is "resource:action[:scope]". In a granted permission any part may
// be "*", and a missing scope grants every scope; "*" alone grants everything.
type Permission struct {
	Resource string
	Action   string
	Scope    string // "" for none
}

// ParsePermission reads "resource:action[:scope]" or "*".
func ParsePermission(s string) (Permission, error) {
	if s == "*" {
		return Permission{Resource: "*", Action: "*"}, nil
	}
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return Permission{}, fmt.Errorf("permission %q: want resource:action or resource:action:scope", s)
	}
	for _, p := range parts {
		if p == "" || strings.TrimSpace(p) != p {
			return Permission{}, fmt.Errorf("permission %q: empty or padded part", s)
		}
	}
	p := Permission{Resource: parts[0], Action: parts[1]}
	if len(parts) == 3 {
		p.Scope = parts[2]
	}
	return p, nil
}

// String returns the permission in its parsed form.
func (p Permission) String() string {
	if p.Scope == "" {
		return p.Resource + ":" + p.Action
	}
	return p.Resource + ":" + p.Action + ":" + p.Scope
}

// Grants reports whether holding p allows what want asks for. Wildcards only
// widen what is held: asking for "orders:*" needs a grant of every action.
func (p Permission) Grants(want Permission) bool {
	if !part(p.Resource, want.Resource) || !part(p.Action, want.Action) {
		return false
	}
	if p.Scope == "" || p.Scope == "*" {
		return true
	}
	return p.Scope == want.Scope
}

func part(held, want string) bool { return held == "*" || held == want }
