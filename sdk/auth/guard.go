package auth

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/microhost/micro/sdk/errors"
)

// Match says how many of a guard's roles and permissions a caller needs.
type Match int

// Guard matching modes.
const (
	MatchAny Match = iota // one listed role or permission suffices
	MatchAll              // every listed role and permission is needed
)

// Guard protects endpoints: it demands an authenticated caller (unless Public)
// holding the listed roles and permissions.
type Guard struct {
	// Endpoint is "Handler.Method", "Handler.*" or "*".
	Endpoint    string
	Match       Match
	Roles       []string
	Permissions []Permission
	// Public admits anonymous callers.
	Public bool
}

// guardEndpoint matches "*", "Handler.*" and "Handler.Method".
var guardEndpoint = regexp.MustCompile(`^(\*|[A-Za-z_][A-Za-z0-9_]*\.(\*|[A-Za-z_][A-Za-z0-9_]*))$`)

// ValidGuardEndpoint reports whether endpoint is what a guard can match:
// "Handler.Method", "Handler.*" or "*".
func ValidGuardEndpoint(endpoint string) bool { return guardEndpoint.MatchString(endpoint) }

// NewGuard checks and compiles one guard.
func NewGuard(c GuardConfig) (*Guard, error) {
	g := &Guard{Endpoint: c.Endpoint, Roles: c.Roles, Public: c.Public}
	if !ValidGuardEndpoint(g.Endpoint) {
		return nil, fmt.Errorf("auth: guard %q: the endpoint must be \"Handler.Method\", \"Handler.*\" or \"*\"; a guard that matches nothing would leave the endpoint it meant open", g.Endpoint)
	}
	switch strings.ToLower(c.Match) {
	case "", "any":
		g.Match = MatchAny
	case "all":
		g.Match = MatchAll
	default:
		return nil, fmt.Errorf("auth: guard %s: match %q: want \"any\" or \"all\"", c.Endpoint, c.Match)
	}
	for _, s := range c.Permissions {
		p, err := ParsePermission(s)
		if err != nil {
			return nil, fmt.Errorf("auth: guard %s: %w", c.Endpoint, err)
		}
		g.Permissions = append(g.Permissions, p)
	}
	if g.Public && (len(g.Roles) > 0 || len(g.Permissions) > 0) {
		return nil, fmt.Errorf("auth: guard %s: a public guard cannot require roles or permissions", c.Endpoint)
	}
	return g, nil
}

// Matches reports whether the guard protects endpoint.
func (g *Guard) Matches(endpoint string) bool {
	switch {
	case g.Endpoint == "*" || g.Endpoint == endpoint:
		return true
	case strings.HasSuffix(g.Endpoint, ".*"):
		return strings.HasPrefix(endpoint, g.Endpoint[:len(g.Endpoint)-1])
	}
	return false
}

// Check decides whether pr (nil when anonymous) may call what: nil when
// allowed, an Unauthorized error without a principal, Forbidden without the
// rights. id names who refuses in the error.
func (g *Guard) Check(policy *Policy, pr *Principal, id, what string) error {
	if pr == nil {
		if g.Public {
			return nil
		}
		return errors.Unauthorized(id, "%s requires authentication: send Authorization: Bearer <token> or a client certificate", what)
	}
	if len(g.Roles) == 0 && len(g.Permissions) == 0 {
		return nil
	}
	if g.allows(policy, pr) {
		return nil
	}
	return errors.Forbidden(id, "%s %q may not call %s: it needs %s", pr.Source, pr.Subject, what, g.need())
}

func (g *Guard) allows(policy *Policy, pr *Principal) bool {
	if g.Match == MatchAll {
		for _, r := range g.Roles {
			if !policy.HasRole(pr, r) {
				return false
			}
		}
		for _, p := range g.Permissions {
			if !policy.Granted(pr, p) {
				return false
			}
		}
		return true
	}
	for _, r := range g.Roles {
		if policy.HasRole(pr, r) {
			return true
		}
	}
	for _, p := range g.Permissions {
		if policy.Granted(pr, p) {
			return true
		}
	}
	return false
}

// need describes what the guard asks for.
func (g *Guard) need() string {
	var parts []string
	if len(g.Roles) > 0 {
		parts = append(parts, "role "+strings.Join(g.Roles, ", "))
	}
	if len(g.Permissions) > 0 {
		ps := make([]string, len(g.Permissions))
		for i, p := range g.Permissions {
			ps[i] = p.String()
		}
		parts = append(parts, "permission "+strings.Join(ps, ", "))
	}
	if g.Match == MatchAll {
		return "all of " + strings.Join(parts, "; ")
	}
	return "any of " + strings.Join(parts, "; ")
}

// Guards is an ordered list of guards; the first that matches an endpoint
// applies.
type Guards []*Guard

// NewGuards compiles guard configs in order.
func NewGuards(cs []GuardConfig) (Guards, error) {
	out := make(Guards, 0, len(cs))
	for _, c := range cs {
		g, err := NewGuard(c)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

// For returns the guard protecting endpoint, nil when none does.
func (gs Guards) For(endpoint string) *Guard {
	for _, g := range gs {
		if g.Matches(endpoint) {
			return g
		}
	}
	return nil
}
