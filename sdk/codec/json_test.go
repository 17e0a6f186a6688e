package codec_test

import (
	"bytes"
	stdjson "encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/microhost/micro/sdk/codec"
)

// TestJSONMarshalMatchesStdlib checks the json codec writes exactly what
// encoding/json writes: escaping, key order, omitempty, floats, methods.
func TestJSONMarshalMatchesStdlib(t *testing.T) {
	type embedded struct {
		Inner string `json:"inner"`
	}
	type withEmbedded struct {
		embedded
		Outer   string `json:"outer"`
		private string //nolint:unused // must not be encoded
		Untag   int
	}
	cases := []struct {
		name string
		v    any
	}{
		{"html escaping", map[string]string{"html": `<a href="x?a=1&b=2">link</a>`}},
		{"line separators", "a\u2028b\u2029c"},
		{"invalid utf8", "bad \xff\xfe bytes"},
		{"control chars", "tab\there\nnl\x01\x1f"},
		{"map key order", map[string]int{"b": 2, "a": 1, "c": 3, "A": 0}},
		{"int map keys", map[int]string{10: "ten", -1: "minus", 2: "two"}},
		{"omitempty zero", Order{}},
		{"order", Order{ID: 1, Customer: "x", Items: []Item{{SKU: "s", Quantity: 2, Price: 1.25}}, Tags: map[string]string{"k": "v"}}},
		{"floats", []float64{0, -0.0, 1, 1.5, 1e20, 1e21, 1e-6, 1e-7, 123456789.123, 3.4028234663852886e+38}},
		{"float32", []float32{0.1, 1e-7, 3.4e38}},
		{"bytes", []byte("hello \x00\xff")},
		{"nil slice and map", struct {
			S []int          `json:"s"`
			M map[string]int `json:"m"`
		}{}},
		{"embedded and untagged", withEmbedded{embedded: embedded{Inner: "i"}, Outer: "o", private: "p", Untag: 3}},
		{"time", time.Date(2024, 2, 29, 12, 30, 45, 123456789, time.UTC)},
		{"raw message", stdjson.RawMessage(`{"pre":"encoded"}`)},
		{"interface values", []any{nil, true, "s", 1.5, map[string]any{"n": nil}}},
		{"string option", struct {
			N int64 `json:"n,string"`
		}{N: 12}},
	}
	c := codec.JSON()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want, err := stdjson.Marshal(tc.v)
			if err != nil {
				t.Fatalf("encoding/json: %v", err)
			}
			got, err := c.Marshal(tc.v)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Marshal differs from encoding/json\n got %s\nwant %s", got, want)
			}
		})
	}
}

// TestJSONUnmarshalMatchesStdlib checks the json codec reads documents as
// encoding/json does: unknown fields ignored, keys matched case-insensitively,
// numbers into interface{} as float64, null leaving values alone.
func TestJSONUnmarshalMatchesStdlib(t *testing.T) {
	docs := []struct {
		name string
		doc  string
	}{
		{"order", `{"id":1,"customer":"c","total":2.5,"paid":true,"items":[{"sku":"a","qty":2,"price":1}],"tags":{"k":"v"},"ship":{"street":"s","city":"c"}}`},
		{"unknown fields", `{"id":3,"unknown":{"deep":[1,2,{"x":null}]},"other":"x"}`},
		{"case-insensitive keys", `{"ID":4,"CUSTOMER":"upper","Items":[{"SKU":"u"}]}`},
		{"nulls", `{"id":null,"items":null,"ship":null,"tags":null}`},
		{"escapes", `{"customer":"\u00e9\ud83d\ude80\n\"\\\/"}`},
		{"whitespace", " \t\r\n{ \"id\" : 5 } \n"},
		{"numbers", `{"id":-0,"total":1e3,"scores":[0.1,-2E-2,1.7976931348623157e308]}`},
		{"dropped field", `{"id":6,"Note":"ignored because of json:\"-\""}`},
	}
	c := codec.JSON()
	for _, tc := range docs {
		t.Run(tc.name+"/struct", func(t *testing.T) {
			var got, want Order
			if err := stdjson.Unmarshal([]byte(tc.doc), &want); err != nil {
				t.Fatalf("encoding/json: %v", err)
			}
			if err := c.Unmarshal([]byte(tc.doc), &got); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Unmarshal differs from encoding/json\n got %#v\nwant %#v", got, want)
			}
		})
		t.Run(tc.name+"/interface", func(t *testing.T) {
			var got, want any
			if err := stdjson.Unmarshal([]byte(tc.doc), &want); err != nil {
				t.Fatalf("encoding/json: %v", err)
			}
			if err := c.Unmarshal([]byte(tc.doc), &got); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Unmarshal differs from encoding/json\n got %#v\nwant %#v", got, want)
			}
		})
	}
}

// TestJSONNumbersAsFloat64 checks numbers land in interface{} as float64.
func TestJSONNumbersAsFloat64(t *testing.T) {
	var v map[string]any
	if err := codec.JSON().Unmarshal([]byte(`{"int":12,"neg":-3,"big":12345678901234567890,"frac":0.5}`), &v); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"int", "neg", "big", "frac"} {
		if _, ok := v[k].(float64); !ok {
			t.Errorf("%s decoded as %T, want float64", k, v[k])
		}
	}
}

// TestJSONMalformed checks malformed and mistyped input is an error, as it is for
// encoding/json, and never a panic.
func TestJSONMalformed(t *testing.T) {
	cases := []struct {
		name string
		doc  string
	}{
		{"empty", ``},
		{"only space", " \n\t"},
		{"unclosed object", `{"id":1`},
		{"unclosed array", `[1,2`},
		{"missing value", `{"id":}`},
		{"trailing comma", `{"id":1,}`},
		{"single quotes", `{'id':1}`},
		{"bare word", `tru`},
		{"trailing data", `{"id":1} {"id":2}`},
		{"trailing garbage", `{"id":1}x`},
		{"unquoted key", `{id:1}`},
		{"control char in string", "{\"customer\":\"a\x01b\"}"},
		{"bad escape", `{"customer":"\x"}`},
		{"bad unicode escape", `{"customer":"\u12"}`},
		{"leading zero", `{"id":01}`},
		{"nan", `{"total":NaN}`},
		{"wrong type", `{"id":"one"}`},
		{"overflow", `{"id":9223372036854775808}`},
		{"object for array", `{"items":{}}`},
		{"deep nesting", strings.Repeat("[", 100001) + strings.Repeat("]", 100001)},
		{"utf8 bom", "\xef\xbb\xbf{}"},
	}
	c := codec.JSON()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var std Order
			if stdjson.Unmarshal([]byte(tc.doc), &std) == nil {
				t.Fatalf("test case is wrong: encoding/json accepts %q", tc.doc)
			}
			var v Order
			if err := c.Unmarshal([]byte(tc.doc), &v); err == nil {
				t.Errorf("Unmarshal(%.40q) = nil error, want an error", tc.doc)
			}
			var a any
			if err := c.Unmarshal([]byte(tc.doc), &a); err == nil && tc.name != "wrong type" && tc.name != "overflow" && tc.name != "object for array" {
				t.Errorf("Unmarshal(%.40q) into interface{} = nil error, want an error", tc.doc)
			}
		})
	}
}
