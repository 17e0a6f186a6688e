package codec

import (
	"github.com/microhost/micro/sdk/errors"
)

// ForContentType returns the codec to read a request body with. Parameters and case
// in contentType are ignored and aliases are accepted. An explicit Content-Type
// always wins: one the Set does not know is a 415 naming it and the supported types.
// Only an empty Content-Type lets the body decide: JSON ('{', '[' or '"' after
// whitespace) or msgpack (a map, array or string header); anything else, an empty
// body included, gets the default codec.
func (s *Set) ForContentType(contentType string, body []byte) (Codec, error) {
	t := s.load()
	if i := t.exact(contentType); i >= 0 { // the common case: no parameters, lower case
		return t.codecs[t.types[i].codec], nil
	}
	mt := trimOWS(beforeParams(contentType))
	if mt == "" && trimOWS(contentType) == "" {
		return t.sniff(body)
	}
	if c, ok := t.lookup(mt); ok {
		return c, nil
	}
	if len(t.codecs) == 0 {
		return nil, errors.UnsupportedMediaType("", "Content-Type %s is not supported: no codecs are configured", quote(contentType))
	}
	return nil, errors.UnsupportedMediaType("", "Content-Type %s is not supported; send one of: %s", quote(contentType), t.accepts)
}

// sniff picks the codec for a body sent without a Content-Type.
func (t *table) sniff(body []byte) (Codec, error) {
	want := ""
	if len(body) > 0 {
		if isMsgpackHeader(body[0]) {
			want = "application/msgpack"
		} else if c := firstNonSpace(body); c == '{' || c == '[' || c == '"' {
			want = "application/json"
		}
	}
	if c, ok := t.lookup(want); ok {
		return c, nil
	}
	if len(t.codecs) == 0 {
		return nil, errors.UnsupportedMediaType("", "no Content-Type given and no codecs are configured")
	}
	return t.codecs[0], nil
}

// isMsgpackHeader reports whether b starts a msgpack map, array or string. None of
// these bytes is ASCII, so none can start JSON.
func isMsgpackHeader(b byte) bool {
	return (b >= 0x80 && b <= 0xbf) || (b >= 0xd9 && b <= 0xdf)
}

// firstNonSpace returns the first byte of body that is not JSON whitespace, or 0.
func firstNonSpace(body []byte) byte {
	for _, b := range body {
		switch b {
		case ' ', '\t', '\r', '\n':
		default:
			return b
		}
	}
	return 0
}

// ForAccept returns the codec to write the response with, following RFC 9110 §12.5.1:
// each codec is weighed by the most specific range of accept that matches it, q=0
// rules it out, and the highest weight wins; at equal weight the more specific range
// wins, then the range earlier in the header, then requestCodec, then the Set order.
// An empty accept, "*/*", or one with no well-formed range at all answers with
// requestCodec (the default codec when it is nil). Nothing acceptable is a 406
// naming accept and the types on offer.
func (s *Set) ForAccept(accept string, requestCodec Codec) (Codec, error) {
	t := s.load()
	if accept == "" || accept == "*/*" || len(t.codecs) == 0 {
		return t.fallback(accept, requestCodec)
	}
	if i := t.exact(accept); i >= 0 { // the common case: one type, lower case
		return t.codecs[t.types[i].codec], nil
	}
	return t.negotiate(accept, requestCodec)
}

// fallback answers an Accept that expresses no preference.
func (t *table) fallback(accept string, requestCodec Codec) (Codec, error) {
	if requestCodec != nil {
		return requestCodec, nil
	}
	if len(t.codecs) > 0 {
		return t.codecs[0], nil
	}
	return nil, errors.NotAcceptable("", "Accept %s cannot be met: no codecs are configured", quote(accept))
}

// weight is how one codec fares against an Accept header.
type weight struct {
	q, specificity, pos int // specificity -1: no range matches
}

// outranks reports whether w beats v, before the request codec and Set order decide.
func (w weight) outranks(v weight) (better, tie bool) {
	switch {
	case w.q != v.q:
		return w.q > v.q, false
	case w.specificity != v.specificity:
		return w.specificity > v.specificity, false
	case w.pos != v.pos:
		return w.pos < v.pos, false
	}
	return false, true
}

// negotiate parses accept and picks the best codec.
func (t *table) negotiate(accept string, requestCodec Codec) (Codec, error) {
	var small [8]weight
	weights := small[:0]
	if n := len(t.codecs); n <= len(small) {
		weights = small[:n]
	} else {
		weights = make([]weight, n)
	}
	for i := range weights {
		weights[i] = weight{specificity: -1}
	}
	wellFormed := false
	rest := accept
	for pos := 0; rest != ""; pos++ {
		var elem string
		elem, rest = cutUnquoted(rest, ',')
		r, ok := parseRange(elem)
		if !ok {
			continue
		}
		wellFormed = true
		for i := range t.types {
			spec := r.specificity(&t.types[i])
			w := &weights[t.types[i].codec]
			if spec > w.specificity || (spec == w.specificity && r.q > w.q) {
				*w = weight{q: r.q, specificity: spec, pos: pos}
			}
		}
	}
	if !wellFormed {
		return t.fallback(accept, requestCodec)
	}
	requestName := ""
	if requestCodec != nil {
		requestName = requestCodec.Name()
	}
	best := -1
	for i, w := range weights {
		if w.specificity < 0 || w.q == 0 {
			continue
		}
		if best < 0 {
			best = i
			continue
		}
		better, tie := w.outranks(weights[best])
		if better || (tie && t.codecs[i].Name() == requestName && t.codecs[best].Name() != requestName) {
			best = i
		}
	}
	if best < 0 {
		return nil, errors.NotAcceptable("", "none of the types in Accept %s can be produced; ask for one of: %s", quote(accept), t.offers)
	}
	return t.codecs[best], nil
}
