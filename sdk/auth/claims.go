package auth

import "strings"

// claimAt walks a dotted path ("realm_access.roles") through nested claim
// objects. A key that itself contains dots is matched first, so a claim named
// "https://example.com/roles" is found too.
func claimAt(claims map[string]any, path string) (any, bool) {
	if path == "" {
		return nil, false
	}
	if v, ok := claims[path]; ok {
		return v, true
	}
	cur := claims
	rest := path
	for {
		head, tail, more := strings.Cut(rest, ".")
		v, ok := cur[head]
		if !ok {
			return nil, false
		}
		if !more {
			return v, true
		}
		next, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok := next[tail]; ok {
			return v, true
		}
		cur, rest = next, tail
	}
}

// stringsClaim reads a claim as a list of strings: a JSON array of strings, or
// one string split on spaces (the OAuth "scope" form). Other values give nil.
func stringsClaim(claims map[string]any, path string) []string {
	v, ok := claimAt(claims, path)
	if !ok {
		return nil
	}
	switch v := v.(type) {
	case string:
		return strings.Fields(v)
	case []string:
		return v
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
