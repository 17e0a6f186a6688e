package codec

import (
	"strconv"
	"strings"
)

// Header parsing for Content-Type and Accept (RFC 9110 §5.6, §8.3, §12.5.1). Every
// helper returns substrings of its input, so parsing never allocates, and reads
// arbitrary bytes without panicking.

// beforeParams returns a Content-Type value up to its first ';'.
func beforeParams(s string) string {
	if i := strings.IndexByte(s, ';'); i >= 0 {
		return s[:i]
	}
	return s
}

// trimOWS trims optional whitespace (spaces and tabs) from both ends of s.
func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// isToken reports whether s is a non-empty RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// cutUnquoted splits s at the first sep that is not inside a quoted string.
func cutUnquoted(s string, sep byte) (before, after string) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++ // the escaped byte, whatever it is
		case c == '"':
			quoted = !quoted
		case !quoted && c == sep:
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

// mediaRange is one parsed element of an Accept header.
type mediaRange struct {
	typ, sub string // "*" for wildcards
	q        int    // weight in thousandths, 0..1000
}

// parseRange parses one Accept element, "type/subtype;param=value;q=0.5"; ok is false
// for a malformed element, which negotiation then ignores.
func parseRange(elem string) (r mediaRange, ok bool) {
	mr, params, _ := strings.Cut(elem, ";")
	typ, sub, found := strings.Cut(trimOWS(mr), "/")
	if !found || !isToken(typ) || !isToken(sub) || (typ == "*" && sub != "*") {
		return mediaRange{}, false
	}
	r = mediaRange{typ: typ, sub: sub, q: 1000}
	for params != "" {
		var p string
		p, params = cutUnquoted(params, ';')
		name, value, found := strings.Cut(p, "=")
		if !found || !strings.EqualFold(trimOWS(name), "q") {
			continue // a media type parameter: offers have none, so it does not matter
		}
		if r.q, ok = parseQ(trimOWS(value)); !ok {
			return mediaRange{}, false
		}
		break // what follows the weight are extensions
	}
	return r, true
}

// parseQ parses a qvalue, "0", "0.5", "1.000", into thousandths.
func parseQ(s string) (int, bool) {
	if s == "" || len(s) > 5 || (s[0] != '0' && s[0] != '1') {
		return 0, false
	}
	q := int(s[0]-'0') * 1000
	if len(s) == 1 {
		return q, true
	}
	if s[1] != '.' {
		return 0, false
	}
	for i, unit := 2, 100; i < len(s); i, unit = i+1, unit/10 {
		d := s[i]
		if d < '0' || d > '9' || (q == 1000 && d != '0') {
			return 0, false
		}
		q += int(d-'0') * unit
	}
	return q, true
}

// specificity returns how closely r matches mt: 2 exactly, 1 as type/*, 0 as */*,
// -1 not at all.
func (r mediaRange) specificity(mt *mediaType) int {
	switch {
	case r.typ == "*":
		return 0
	case !strings.EqualFold(r.typ, mt.typ):
		return -1
	case r.sub == "*":
		return 1
	case strings.EqualFold(r.sub, mt.sub):
		return 2
	}
	return -1
}

// quote returns a header value for an error detail: quoted, and cut short when long.
func quote(s string) string {
	const limit = 128
	if len(s) > limit {
		return strconv.Quote(s[:limit]) + "..."
	}
	return strconv.Quote(s)
}
