package conformance

import (
	"fmt"
	"math"
	"math/rand/v2"
	"mime"
	"reflect"
	"strings"
	"sync"
	"testing"
	"unicode"

	"github.com/microhost/micro/sdk/codec"
)

// Codec runs the codec.Codec conformance suite. newCodec is called once per
// subtest with that subtest's t.
//
// Values are round-tripped into fresh values of their type and compared after
// normalising what codecs may legitimately change: a nil slice or map may come
// back empty and the reverse, and numbers inside interface values (map[string]any)
// may come back as any numeric type of the same value (json gives float64,
// msgpack the smallest integer type). Everything else must be equal, including
// int64 and uint64 extremes in typed fields. Struct fields are named by their
// json tags, and a field tagged "-" does not travel.
//
// Subtests (each runnable alone with -run): Identity, RoundTrip (one subtest per
// shape), JSONTags, Garbage, BadTarget, Concurrent.
func Codec(t *testing.T, newCodec func(t *testing.T) codec.Codec, opts ...Option) {
	t.Helper()
	s := &codecSuite{cfg: newConfig(opts), newCodec: newCodec}
	for _, tc := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"Identity", s.identity},
		{"RoundTrip", s.roundTrip},
		{"JSONTags", s.jsonTags},
		{"Garbage", s.garbage},
		{"BadTarget", s.badTarget},
		{"Concurrent", s.concurrent},
	} {
		t.Run(tc.name, tc.run)
	}
}

// codecSuite holds what every codec subtest needs.
type codecSuite struct {
	cfg      config
	newCodec func(t *testing.T) codec.Codec
}

// open returns a codec for one subtest.
func (s *codecSuite) open(t *testing.T) codec.Codec {
	t.Helper()
	c := s.newCodec(t)
	if c == nil {
		t.Fatal("newCodec returned nil")
	}
	return c
}

// codecSample exercises every kind of field a request or response body holds.
type codecSample struct {
	Text      string            `json:"text"`
	Unicode   string            `json:"unicode"`
	Escapes   string            `json:"escapes"`
	Empty     string            `json:"empty"`
	Int       int               `json:"int"`
	Negative  int64             `json:"negative"`
	MaxInt64  int64             `json:"max_int64"`
	MinInt64  int64             `json:"min_int64"`
	MaxUint64 uint64            `json:"max_uint64"`
	Small     int8              `json:"small"`
	Float     float64           `json:"float"`
	Tiny      float64           `json:"tiny"`
	Huge      float64           `json:"huge"`
	Float32   float32           `json:"float32"`
	True      bool              `json:"true"`
	False     bool              `json:"false"`
	Strings   []string          `json:"strings"`
	Ints      []int64           `json:"ints"`
	Bytes     []byte            `json:"bytes"`
	Nested    codecInner        `json:"nested"`
	Items     []codecInner      `json:"items"`
	Labels    map[string]string `json:"labels"`
	Any       map[string]any    `json:"any"`
	Ptr       *codecInner       `json:"ptr"`
	NilPtr    *codecInner       `json:"nil_ptr"`
	IntPtr    *int              `json:"int_ptr"`
	Omitted   string            `json:"omitted,omitempty"`
	OmitSlice []string          `json:"omit_slice,omitempty"`
	NilSlice  []string          `json:"nil_slice"`
	NilMap    map[string]string `json:"nil_map"`
	Skipped   string            `json:"-"`
}

// codecInner is a nested struct, reached by value, in slices and by pointer.
type codecInner struct {
	Name  string   `json:"name"`
	Count int      `json:"count"`
	Tags  []string `json:"tags,omitempty"`
	Deep  *struct {
		Level int `json:"level"`
	} `json:"deep,omitempty"`
}

// fullSample returns a codecSample with every field set.
func fullSample() *codecSample {
	zero := 0
	return &codecSample{
		Text:      "hello",
		Unicode:   "zoë, Ångström, 世界, ガジェット, emoji 🚀👩‍💻🇪🇺",
		Escapes:   "\"quoted\" \\ <b>&amp;</b> \t\n\r \u2028\u2029 \x00 \x1f",
		Int:       42,
		Negative:  -9001,
		MaxInt64:  math.MaxInt64,
		MinInt64:  math.MinInt64,
		MaxUint64: math.MaxUint64,
		Small:     -128,
		Float:     3.141592653589793,
		Tiny:      -1.5e-300,
		Huge:      1.7976931348623157e308,
		Float32:   0.15625,
		True:      true,
		Strings:   []string{"a", "", "ü", "🚀"},
		Ints:      []int64{0, -1, 1, math.MaxInt32 + 1, math.MinInt32 - 1},
		Bytes:     []byte{0, 1, 2, 0x7f, 0x80, 0xfe, 0xff},
		Nested:    codecInner{Name: "nested", Count: -3, Tags: []string{"x"}},
		Items: []codecInner{
			{Name: "one", Count: 1},
			{Name: "two", Count: 2, Deep: &struct {
				Level int `json:"level"`
			}{Level: 7}},
		},
		Labels: map[string]string{"team": "core", "": "empty key", "ключ": "значение"},
		Any: map[string]any{
			"string": "s",
			"number": 12.5,
			"int":    -7,
			"big":    1 << 40,
			"bool":   true,
			"null":   nil,
			"list":   []any{"a", 1, false, nil, []any{2.5}},
			"object": map[string]any{"k": "v", "n": 3},
		},
		Ptr:      &codecInner{Name: "pointed", Count: 9},
		IntPtr:   &zero,
		NilSlice: nil,
		Skipped:  "never sent",
	}
}

// roundTrip checks values of many shapes come back equal after Marshal and
// Unmarshal into a fresh value.
func (s *codecSuite) roundTrip(t *testing.T) {
	c := s.open(t)
	full := fullSample()
	wantFull := fullSample()
	wantFull.Skipped = ""
	cases := []struct {
		name     string
		in, want any // want is what a fresh value of in's type must become
	}{
		{"Struct", full, wantFull},
		{"ZeroStruct", &codecSample{}, &codecSample{}},
		{"OmitEmpty", &codecSample{Omitted: "", OmitSlice: []string{}, Text: "kept"}, &codecSample{Text: "kept"}},
		{"String", ptr("héllo, 世界 🌍"), ptr("héllo, 世界 🌍")},
		{"EmptyString", ptr(""), ptr("")},
		{"Int64s", &[]int64{math.MinInt64, -1, 0, 1, math.MaxInt64}, &[]int64{math.MinInt64, -1, 0, 1, math.MaxInt64}},
		{"Floats", &[]float64{0, -0.5, 0.1, 1e21, -1e-7, math.MaxFloat64, math.SmallestNonzeroFloat64}, &[]float64{0, -0.5, 0.1, 1e21, -1e-7, math.MaxFloat64, math.SmallestNonzeroFloat64}},
		{"Bools", &[]bool{true, false}, &[]bool{true, false}},
		{"Slice", &[]codecInner{{Name: "a"}, {Name: "b", Count: 2}}, &[]codecInner{{Name: "a"}, {Name: "b", Count: 2}}},
		{"NilSlice", new([]string), new([]string)},
		{"NestedSlices", &[][]string{{"a"}, {}, nil, {"b", "c"}}, &[][]string{{"a"}, {}, nil, {"b", "c"}}},
		{"StringMap", &map[string]string{"a": "1", "ü": "2"}, &map[string]string{"a": "1", "ü": "2"}},
		{"AnyMap", &map[string]any{"n": 1.5, "s": "x", "l": []any{true, "y"}}, &map[string]any{"n": 1.5, "s": "x", "l": []any{true, "y"}}},
		{"NilMap", new(map[string]string), new(map[string]string)},
		{"Pointer", ptr(&codecInner{Name: "p"}), ptr(&codecInner{Name: "p"})},
		{"NilPointer", new(*codecInner), new(*codecInner)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data, err := c.Marshal(tc.in)
			if err != nil {
				t.Fatalf("Marshal(%T): %v", tc.in, err)
			}
			got := reflect.New(reflect.TypeOf(tc.in).Elem()).Interface()
			if err := unmarshal(t, c, data, got); err != nil {
				t.Fatalf("Unmarshal(%q) into %T: %v", data, got, err)
			}
			if !sameValue(got, tc.want) {
				t.Errorf("round trip of %T:\n got %#v\nwant %#v\nwire %q", tc.in, deref(got), deref(tc.want), data)
			}
		})
	}
}

// jsonTags checks json tags name the fields on the wire, whatever the Go field is
// called, and that fields the target lacks are ignored.
func (s *codecSuite) jsonTags(t *testing.T) {
	type sender struct {
		GoName  string         `json:"wire_name"`
		Number  int            `json:"number"`
		Unknown map[string]any `json:"unknown"`
		Extra   []string       `json:"extra"`
	}
	type receiver struct {
		OtherGoName string `json:"wire_name"`
		Count       int    `json:"number"`
	}
	c := s.open(t)
	data, err := c.Marshal(sender{GoName: "by tag", Number: 7, Unknown: map[string]any{"x": []any{"y"}}, Extra: []string{"z"}})
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	var got receiver
	if err := unmarshal(t, c, data, &got); err != nil {
		t.Fatalf("Unmarshal into a struct without some of the fields sent: %v", err)
	}
	if want := (receiver{OtherGoName: "by tag", Count: 7}); got != want {
		t.Errorf("got %+v, want %+v: fields must be matched by their json tags", got, want)
	}
}

// identity checks Name and ContentType are usable in config and headers.
func (s *codecSuite) identity(t *testing.T) {
	c := s.open(t)
	if name := c.Name(); name == "" || strings.IndexFunc(name, unicode.IsSpace) >= 0 {
		t.Errorf("Name() = %q, want a non-empty name without spaces", name)
	}
	ct := c.ContentType()
	mt, params, err := mime.ParseMediaType(ct)
	switch {
	case err != nil:
		t.Errorf("ContentType() = %q is not a media type: %v", ct, err)
	case len(params) > 0 || !strings.EqualFold(mt, ct):
		t.Errorf("ContentType() = %q, want a media type without parameters (%q)", ct, mt)
	case !strings.Contains(mt, "/") || strings.Contains(mt, "*"):
		t.Errorf("ContentType() = %q, want a concrete type/subtype", ct)
	}
}

// garbage checks Unmarshal of malformed input returns an error and never panics.
func (s *codecSuite) garbage(t *testing.T) {
	c := s.open(t)
	valid, err := c.Marshal(fullSample())
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	targets := []func() any{
		func() any { return new(codecSample) },
		func() any { return new(map[string]any) },
		func() any { return new(any) },
		func() any { return new([]string) },
	}
	// Input no codec may accept: empty, the reserved msgpack byte that is not
	// json either, and a valid encoding cut short.
	mustFail := map[string][]byte{
		"empty":         {},
		"nil":           nil,
		"reserved byte": {0xc1},
		"truncated":     valid[:len(valid)/2],
		"last byte cut": valid[:len(valid)-1],
	}
	for what, data := range mustFail {
		for _, newTarget := range targets {
			target := newTarget()
			if err := unmarshal(t, c, data, target); err == nil {
				t.Errorf("Unmarshal(%s: %.32q) into %T = nil error, want an error", what, data, target)
			}
		}
	}
	// Arbitrary bytes may happen to be valid, but must never panic.
	rng := rand.New(rand.NewPCG(1, 2))
	var inputs [][]byte
	for b := range 256 {
		inputs = append(inputs, []byte{byte(b)}, []byte{byte(b), 0xff, 0x00, '{'})
	}
	for range 200 {
		data := make([]byte, rng.IntN(64))
		for i := range data {
			data[i] = byte(rng.UintN(256))
		}
		inputs = append(inputs, data)
	}
	for i := 0; i < len(valid); i += max(1, len(valid)/64) { // one flipped byte
		data := append([]byte(nil), valid...)
		data[i] ^= 0xa5
		inputs = append(inputs, data)
	}
	for _, data := range inputs {
		for _, newTarget := range targets {
			_ = unmarshal(t, c, data, newTarget()) // an error or not; a panic fails
		}
	}
}

// badTarget checks Unmarshal into a non-pointer, nil or a nil pointer is an error.
func (s *codecSuite) badTarget(t *testing.T) {
	c := s.open(t)
	data, err := c.Marshal(&codecInner{Name: "x", Count: 1})
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	for _, tc := range []struct {
		what   string
		target any
	}{
		{"a struct value", codecInner{}},
		{"a map value", map[string]any{}},
		{"nil", nil},
		{"a nil pointer", (*codecInner)(nil)},
	} {
		if err := unmarshal(t, c, data, tc.target); err == nil {
			t.Errorf("Unmarshal into %s = nil error, want an error", tc.what)
		}
	}
}

// concurrent checks one codec serves many goroutines at once (run with -race).
func (s *codecSuite) concurrent(t *testing.T) {
	const goroutines, rounds = 8, 50
	c := s.open(t)
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range rounds {
				in := fullSample()
				in.Int, in.Text = g*rounds+i, fmt.Sprintf("goroutine %d round %d", g, i)
				in.Skipped = ""
				data, err := c.Marshal(in)
				if err != nil {
					errs <- fmt.Errorf("goroutine %d: Marshal: %w", g, err)
					return
				}
				var out codecSample
				if err := unmarshal(t, c, data, &out); err != nil {
					errs <- fmt.Errorf("goroutine %d: Unmarshal: %w", g, err)
					return
				}
				if !sameValue(&out, in) {
					errs <- fmt.Errorf("goroutine %d round %d: got %#v, want %#v", g, i, out, *in)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	reportErrors(t, errs)
}

// unmarshal calls c.Unmarshal; a panic fails t and is returned as an error.
func unmarshal(t *testing.T, c codec.Codec, data []byte, v any) (err error) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Errorf("Unmarshal(%.32q) into %T panicked; it must return an error instead: %v", data, v, p)
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return c.Unmarshal(data, v)
}

// sameValue reports whether a and b are equal once normalised (see Codec).
func sameValue(a, b any) bool {
	return reflect.DeepEqual(normalize(reflect.ValueOf(a), false), normalize(reflect.ValueOf(b), false))
}

// normalize turns v into a tree of maps, slices and scalars that compares equal
// for values a codec may legitimately return for one another: structs become
// maps of their exported fields, nil and empty slices and maps become empty, and
// numbers held in interfaces become float64.
func normalize(v reflect.Value, inAny bool) any {
	switch v.Kind() {
	case reflect.Invalid:
		return nil
	case reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return normalize(v.Elem(), true)
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return []any{"ptr", normalize(v.Elem(), inAny)}
	case reflect.Struct:
		out := make(map[string]any, v.NumField())
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				out[f.Name] = normalize(v.Field(i), inAny)
			}
		}
		return out
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 && !inAny {
			return string(v.Bytes())
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = normalize(v.Index(i), inAny)
		}
		return out
	case reflect.Map:
		out := make(map[string]any, v.Len())
		for it := v.MapRange(); it.Next(); {
			out[fmt.Sprint(it.Key().Interface())] = normalize(it.Value(), inAny)
		}
		return out
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if inAny {
			return float64(v.Int())
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if inAny {
			return float64(v.Uint())
		}
	case reflect.Float32, reflect.Float64:
		if inAny {
			return v.Float()
		}
	}
	return v.Interface()
}

func ptr[T any](v T) *T { return &v }

func deref(v any) any { return reflect.ValueOf(v).Elem().Interface() }
