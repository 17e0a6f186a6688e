package codec

import (
	"strings"
	"sync"
	"sync/atomic"
)

// Aliaser is implemented by a codec that also answers to other media types than its
// ContentType, as msgpack does to application/x-msgpack; a Set registers them too.
type Aliaser interface {
	Aliases() []string
}

// builtins is the read-only name→constructor table of built-in codecs, in the order
// DefaultSet uses.
var builtins = [...]struct {
	name string
	new  func() Codec
}{
	{"json", JSON},
	{"msgpack", Msgpack},
}

// Builtin returns a new instance of the built-in codec called name ("json",
// "msgpack"), as named in config.
func Builtin(name string) (Codec, bool) {
	for _, b := range builtins {
		if b.name == name {
			return b.new(), true
		}
	}
	return nil, false
}

// BuiltinNames returns the names Builtin accepts, default first.
func BuiltinNames() []string {
	names := make([]string, len(builtins))
	for i, b := range builtins {
		names[i] = b.name
	}
	return names
}

// Set is the codecs one server, client or gateway speaks, by name and by media type;
// the first added is the default. Reads never lock and never allocate on the hot
// path; Add publishes a new snapshot, so it is safe at any time, though a Set is
// meant to be built before serving starts.
type Set struct {
	mu  sync.Mutex // serialises Add
	tab atomic.Pointer[table]
}

// table is one immutable snapshot of a Set.
type table struct {
	codecs  []Codec
	aliases [][]string  // the aliases given to Add, per codec
	types   []mediaType // every media type, in codec order, each codec's canonical first
	accepts string      // every media type, for 415 details
	offers  string      // every codec's own ContentType, for 406 details
}

// mediaType is one media type a codec answers to, in lower case.
type mediaType struct {
	full, typ, sub string
	codec          int // index in table.codecs
}

// NewSet returns a Set of codecs; the first is the default.
func NewSet(codecs ...Codec) *Set {
	s := &Set{}
	for _, c := range codecs {
		s.Add(c)
	}
	return s
}

// DefaultSet returns the built-in codecs: json (the default), then msgpack.
func DefaultSet() *Set {
	s := &Set{}
	for _, b := range builtins {
		s.Add(b.new())
	}
	return s
}

// Add registers c under its Name, its ContentType, its Aliases if it is an Aliaser,
// and the extra media types given (parameters and case are ignored). A codec with
// the same Name as one already in the Set replaces it in place. A media type
// claimed by two codecs stays with the one earlier in the Set; malformed media types
// are skipped. A nil c is ignored.
func (s *Set) Add(c Codec, aliases ...string) {
	if s == nil || c == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var codecs []Codec
	var extra [][]string
	if old := s.tab.Load(); old != nil {
		codecs = append(codecs, old.codecs...)
		extra = append(extra, old.aliases...)
	}
	i := indexByName(codecs, c.Name())
	if i < 0 {
		codecs = append(codecs, c)
		extra = append(extra, append([]string(nil), aliases...))
	} else {
		codecs[i] = c
		extra[i] = append([]string(nil), aliases...)
	}
	s.tab.Store(newTable(codecs, extra))
}

// newTable indexes codecs by media type.
func newTable(codecs []Codec, extra [][]string) *table {
	t := &table{codecs: codecs, aliases: extra}
	var accepts, offers []string
	for i, c := range codecs {
		names := []string{c.ContentType()}
		if a, ok := c.(Aliaser); ok {
			names = append(names, a.Aliases()...)
		}
		names = append(names, extra[i]...)
		for j, name := range names {
			mt, ok := parseMediaType(name)
			if !ok || t.exact(mt.full) >= 0 {
				continue
			}
			mt.codec = i
			t.types = append(t.types, mt)
			accepts = append(accepts, mt.full)
			if j == 0 {
				offers = append(offers, mt.full)
			}
		}
	}
	t.accepts = strings.Join(accepts, ", ")
	t.offers = strings.Join(offers, ", ")
	return t
}

// parseMediaType returns name without parameters, in lower case, split at its
// slash; ok is false unless it is a type/subtype of tokens with no wildcard.
func parseMediaType(name string) (mediaType, bool) {
	full := strings.ToLower(trimOWS(beforeParams(name)))
	typ, sub, ok := strings.Cut(full, "/")
	if !ok || !isToken(typ) || !isToken(sub) || typ == "*" || sub == "*" {
		return mediaType{}, false
	}
	return mediaType{full: full, typ: typ, sub: sub}, true
}

func indexByName(codecs []Codec, name string) int {
	for i, c := range codecs {
		if c.Name() == name {
			return i
		}
	}
	return -1
}

// load returns the current snapshot; a nil or empty Set reads as one without codecs.
func (s *Set) load() *table {
	if s != nil {
		if t := s.tab.Load(); t != nil {
			return t
		}
	}
	return &table{}
}

// ByName returns the codec registered under name.
func (s *Set) ByName(name string) (Codec, bool) {
	t := s.load()
	if i := indexByName(t.codecs, name); i >= 0 {
		return t.codecs[i], true
	}
	return nil, false
}

// Default returns the first codec added, or nil for an empty Set.
func (s *Set) Default() Codec {
	t := s.load()
	if len(t.codecs) == 0 {
		return nil
	}
	return t.codecs[0]
}

// Codecs returns the codecs in the Set, default first.
func (s *Set) Codecs() []Codec {
	return append([]Codec(nil), s.load().codecs...)
}

// exact returns the index in t.types of the media type spelled exactly mt, or -1.
func (t *table) exact(mt string) int {
	for i := range t.types {
		if t.types[i].full == mt {
			return i
		}
	}
	return -1
}

// lookup returns the codec for a media type without parameters, in any case.
func (t *table) lookup(mt string) (Codec, bool) {
	i := t.exact(mt)
	if i < 0 {
		for j := range t.types {
			if strings.EqualFold(t.types[j].full, mt) {
				i = j
				break
			}
		}
	}
	if i < 0 {
		return nil, false
	}
	return t.codecs[t.types[i].codec], true
}
