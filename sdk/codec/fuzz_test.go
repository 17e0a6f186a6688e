package codec_test

import (
	"bytes"
	stdjson "encoding/json"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/microhost/micro/sdk/codec"
	"github.com/microhost/micro/sdk/errors"
)

// FuzzJSONUnmarshal checks the json codec never panics, accepts exactly what
// encoding/json accepts, decodes to what encoding/json decodes, and round-trips.
func FuzzJSONUnmarshal(f *testing.F) {
	for _, seed := range []string{
		`{"id":1,"customer":"c","items":[{"sku":"a","qty":2,"price":1.5}],"tags":{"k":"v"},"ship":{"city":"x"}}`,
		`{"ID":2,"unknown":[1,{"a":null}],"raw":"AAEC"}`,
		`[1,-2.5e3,"s\u00e9\ud83d\ude80",true,false,null,{}]`,
		`"\u2028<&>"`, `0`, `-0.0e-0`, `1e400`, ` {"a" : [ ] } `,
		``, `{`, `[1,2`, `{"id":}`, `{"id":1,}`, `{'id':1}`, `{"id":1}x`, "\"\xff\"", "\"\x01\"", `"\ud800"`,
		`{"id":"one"}`, `{"id":9223372036854775808}`, `{"items":{}}`, `[[[[[[[[[[]]]]]]]]]]`,
	} {
		f.Add([]byte(seed))
	}
	c := codec.JSON()
	f.Fuzz(func(t *testing.T, data []byte) {
		var typed Order
		_ = c.Unmarshal(data, &typed) // must not panic

		var got, want any
		err := c.Unmarshal(data, &got)
		stdErr := stdjson.Unmarshal(data, &want)
		if (err == nil) != (stdErr == nil) {
			t.Fatalf("Unmarshal(%q): error %v, encoding/json error %v", data, err, stdErr)
		}
		if err != nil {
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Unmarshal(%q) = %#v, encoding/json gives %#v", data, got, want)
		}
		out, err := c.Marshal(got)
		if err != nil {
			t.Fatalf("Marshal(%#v): %v", got, err)
		}
		var again any
		if err := c.Unmarshal(out, &again); err != nil {
			t.Fatalf("Unmarshal(Marshal(%#v)) = %q: %v", got, out, err)
		}
		if !reflect.DeepEqual(again, got) {
			t.Fatalf("round trip of %q: got %#v, want %#v", data, again, got)
		}
	})
}

// FuzzMsgpackUnmarshal checks the msgpack codec never panics (nor runs out of
// memory or stack) and that what it decodes round-trips.
func FuzzMsgpackUnmarshal(f *testing.F) {
	mp := codec.Msgpack()
	order, err := mp.Marshal(Order{ID: 1, Customer: "c", Items: []Item{{SKU: "a", Quantity: 2}}, Tags: map[string]string{"k": "v"}, Ship: &Address{City: "x"}, Raw: []byte{1}})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range [][]byte{
		order,
		{0x93, 0x01, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0xc4, 0x01, 0xff}, // [1, 1.5, bin]
		{0x82, 0xa1, 'a', 0xc3, 0xa1, 'b', 0x90},                           // {"a": true, "b": []}
		{0xd6, 0xff, 0x65, 0x00, 0x00, 0x00},                               // time
		{0xd7, 0xff, 0x85, 0, 0, 0, 0x65, 0, 0, 0},                         // time whose payload looks like a map
		{0xca, 0x7f, 0xc0, 0x00, 0x00},                                     // float32 NaN
		{0xdd, 0xff, 0xff, 0xff, 0xff},                                     // array32 claiming 4G
		{0xdf, 0xff, 0xff, 0xff, 0xff},                                     // map32 claiming 4G
		{0xdb, 0xff, 0xff, 0xff, 0xff, 'a'},                                // str32 claiming 4G
		{0x81, 0x90, 0x01},                                                 // unhashable key
		{0x81, 0xa1, 'm', 0xd8, 0x01, 0x81, 0xa1, 'k', 0xdd, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0}, // extension read as a map
		{0x91, 0x91, 0x91, 0x91, 0xc0},
		{0xc1}, {}, {0x80, 0x00},
	} {
		f.Add(seed)
	}
	canonical := func(t *testing.T, v any) []byte {
		var buf bytes.Buffer
		enc := msgpack.NewEncoder(&buf)
		enc.SetSortMapKeys(true)
		enc.UseCompactInts(true)
		if err := enc.Encode(v); err != nil {
			t.Fatalf("canonical encoding of %#v: %v", v, err)
		}
		return buf.Bytes()
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, target := range []any{new(Order), new(map[string]any), new(map[any]any), new([]any), new([]byte), new(string)} {
			_ = mp.Unmarshal(data, target) // must not panic
		}
		var got any
		if err := mp.Unmarshal(data, &got); err != nil {
			return
		}
		out, err := mp.Marshal(got)
		if err != nil {
			t.Fatalf("Marshal(%#v): %v", got, err)
		}
		var again any
		if err := mp.Unmarshal(out, &again); err != nil {
			t.Fatalf("Unmarshal(Marshal(%#v)) = % x: %v", got, out, err)
		}
		if a, b := canonical(t, got), canonical(t, again); !bytes.Equal(a, b) {
			t.Fatalf("round trip of % x: got % x, want % x", data, b, a)
		}
	})
}

// FuzzNegotiate checks negotiation never panics on arbitrary headers and bodies and
// always answers either a codec or the right error.
func FuzzNegotiate(f *testing.F) {
	for _, seed := range []struct {
		contentType, accept string
		body                []byte
	}{
		{"application/json", "application/json", nil},
		{"application/json; charset=utf-8", "application/json, application/msgpack;q=0.5", nil},
		{"APPLICATION/X-MSGPACK", "application/msgpack, application/json;q=0.9", nil},
		{"application/msgpack", "application/json;q=0, */*;q=0.1", nil},
		{"text/plain", "text/html", nil},
		{"", "", []byte(`{"a":1}`)},
		{"", "*/*", msgpackBody},
		{"  ", "application/*", []byte(" \n")},
		{";", `a/b;q="1,2";x, c/d;q=1.0000`, nil},
		{"\x00/\xff", ",,;;=,\"", []byte{0xc1}},
		{"application/json;charset=\"utf-8\"", "application/json;q=0.", nil},
		{"*/*", "*/json, application/x-msgpack;Q=0.001", nil},
	} {
		f.Add(seed.contentType, seed.accept, seed.body)
	}
	s := codec.DefaultSet()
	f.Fuzz(func(t *testing.T, contentType, accept string, body []byte) {
		req, err := s.ForContentType(contentType, body)
		if (req == nil) == (err == nil) {
			t.Fatalf("ForContentType(%q) = %v, %v: want exactly one", contentType, req, err)
		}
		if err != nil && errors.Code(err) != 415 {
			t.Fatalf("ForContentType(%q): %v, want a 415", contentType, err)
		}
		resp, err := s.ForAccept(accept, req)
		if (resp == nil) == (err == nil) {
			t.Fatalf("ForAccept(%q) = %v, %v: want exactly one", accept, resp, err)
		}
		if err != nil {
			if errors.Code(err) != 406 {
				t.Fatalf("ForAccept(%q): %v, want a 406", accept, err)
			}
			return
		}
		// What was chosen must be what its own content type asks for.
		if again, err := s.ForAccept(resp.ContentType(), nil); err != nil || again.Name() != resp.Name() {
			t.Fatalf("ForAccept(%q) = %v, %v; want %s", resp.ContentType(), again, err, resp.Name())
		}
	})
}
