package codec_test

import (
	"reflect"
	"testing"

	"github.com/microhost/micro/sdk/codec"
)

// Order is a realistic request body: nested structs, a pointer, slices, a map, and
// the json tag options (renames, omitempty, "-") both codecs must honour.
type Order struct {
	ID       int64             `json:"id"`
	Customer string            `json:"customer"`
	Email    string            `json:"email,omitempty"`
	Total    float64           `json:"total"`
	Paid     bool              `json:"paid"`
	Items    []Item            `json:"items"`
	Tags     map[string]string `json:"tags,omitempty"`
	Ship     *Address          `json:"ship,omitempty"`
	Scores   []float64         `json:"scores,omitempty"`
	Note     string            `json:"-"`
	Raw      []byte            `json:"raw,omitempty"`
}

// Item is one order line.
type Item struct {
	SKU      string  `json:"sku"`
	Name     string  `json:"name"`
	Quantity int     `json:"qty"`
	Price    float64 `json:"price"`
}

// Address is a nested struct reached through a pointer.
type Address struct {
	Street string `json:"street"`
	City   string `json:"city"`
	Zip    string `json:"zip,omitempty"`
}

// builtins returns every built-in codec, by name, as config would name them.
func builtins(t testing.TB) []codec.Codec {
	t.Helper()
	var out []codec.Codec
	for _, name := range codec.BuiltinNames() {
		c, ok := codec.Builtin(name)
		if !ok {
			t.Fatalf("Builtin(%q) not found though BuiltinNames lists it", name)
		}
		out = append(out, c)
	}
	return out
}

// TestRoundTrip checks that what each codec marshals it unmarshals to an equal value.
func TestRoundTrip(t *testing.T) {
	full := Order{
		ID: 42, Customer: "Zoë Ångström", Email: "zoe@example.com", Total: 1234.5, Paid: true,
		Items: []Item{
			{SKU: "A-1", Name: "widget <b>&</b>", Quantity: 3, Price: 9.99},
			{SKU: "B-2", Name: "ガジェット 🚀", Quantity: -1, Price: 0},
		},
		Tags:   map[string]string{"gift": "yes", "prio": "high", "": "empty key"},
		Ship:   &Address{Street: "1 Main St", City: "Zürich", Zip: "8000"},
		Scores: []float64{0.5, -1e-9, 1e21},
		Note:   "never sent",
		Raw:    []byte{0, 1, 2, 255},
	}
	wantFull := full
	wantFull.Note = "" // json:"-"

	cases := []struct {
		name     string
		in, want any // want is what a fresh value of in's type must become
		fresh    func() any
	}{
		{"order", &full, &wantFull, func() any { return new(Order) }},
		{"zero order", &Order{}, &Order{}, func() any { return new(Order) }},
		{"empty slices and map", &Order{Items: []Item{}, Tags: map[string]string{}}, &Order{Items: []Item{}}, func() any { return new(Order) }},
		{"map", &map[string]int{"a": 1, "b": -2, "ü": 3}, &map[string]int{"a": 1, "b": -2, "ü": 3}, func() any { return new(map[string]int) }},
		{"nil map", new(map[string]int), new(map[string]int), func() any { return new(map[string]int) }},
		{"nested slices", &[][]string{{"a"}, {}, nil, {"b", "c"}}, &[][]string{{"a"}, {}, nil, {"b", "c"}}, func() any { return new([][]string) }},
		{"nil slice", new([]int), new([]int), func() any { return new([]int) }},
		{"unicode string", ptr("héllo, 世界 🌍 \u2028 \x00 \"quoted\" \\"), ptr("héllo, 世界 🌍 \u2028 \x00 \"quoted\" \\"), func() any { return new(string) }},
		{"empty string", ptr(""), ptr(""), func() any { return new(string) }},
		{"nil pointer", new(*Address), new(*Address), func() any { return new(*Address) }},
		{"int64 extremes", &[]int64{-9223372036854775808, 9223372036854775807, 0}, &[]int64{-9223372036854775808, 9223372036854775807, 0}, func() any { return new([]int64) }},
	}
	for _, c := range builtins(t) {
		for _, tc := range cases {
			t.Run(c.Name()+"/"+tc.name, func(t *testing.T) {
				data, err := c.Marshal(tc.in)
				if err != nil {
					t.Fatalf("Marshal: %v", err)
				}
				got := tc.fresh()
				if err := c.Unmarshal(data, got); err != nil {
					t.Fatalf("Unmarshal(%q): %v", data, err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("round trip:\n got %#v\nwant %#v\nwire %q", deref(got), deref(tc.want), data)
				}
			})
		}
	}
}

// TestUnknownFieldsIgnored checks both codecs skip fields the target does not have.
func TestUnknownFieldsIgnored(t *testing.T) {
	type wide struct {
		ID    int64          `json:"id"`
		Extra map[string]any `json:"extra"`
		More  []any          `json:"more"`
	}
	type narrow struct {
		ID int64 `json:"id"`
	}
	for _, c := range builtins(t) {
		t.Run(c.Name(), func(t *testing.T) {
			data, err := c.Marshal(wide{ID: 7, Extra: map[string]any{"a": []any{"b", 1.5}}, More: []any{nil, true}})
			if err != nil {
				t.Fatal(err)
			}
			var got narrow
			if err := c.Unmarshal(data, &got); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if got.ID != 7 {
				t.Errorf("ID = %d, want 7", got.ID)
			}
		})
	}
}

// TestIdentity checks names and content types, which config and headers rely on.
func TestIdentity(t *testing.T) {
	cases := []struct{ name, contentType string }{
		{"json", "application/json"},
		{"msgpack", "application/msgpack"},
	}
	for _, tc := range cases {
		c, ok := codec.Builtin(tc.name)
		if !ok {
			t.Fatalf("Builtin(%q) missing", tc.name)
		}
		if c.Name() != tc.name || c.ContentType() != tc.contentType {
			t.Errorf("Builtin(%q) = %s %s, want %s %s", tc.name, c.Name(), c.ContentType(), tc.name, tc.contentType)
		}
	}
}

// TestMisuse checks a wrong target or an unencodable value is an error, not a panic.
func TestMisuse(t *testing.T) {
	var notPointer Order
	targets := []struct {
		name string
		v    any
	}{
		{"nil", nil},
		{"non-pointer", notPointer},
		{"nil pointer", (*Order)(nil)},
	}
	for _, c := range builtins(t) {
		data, err := c.Marshal(Order{ID: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, target := range targets {
			t.Run(c.Name()+"/"+target.name, func(t *testing.T) {
				if err := c.Unmarshal(data, target.v); err == nil {
					t.Error("Unmarshal = nil error, want an error")
				}
			})
		}
		t.Run(c.Name()+"/chan", func(t *testing.T) {
			if _, err := c.Marshal(make(chan int)); err == nil {
				t.Error("Marshal(chan) = nil error, want an error")
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func deref(v any) any { return reflect.ValueOf(v).Elem().Interface() }
