package codec_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/microhost/micro/sdk/codec"
)

// TestMsgpackUsesJSONTags checks the json tag names fields, and drops them, when
// there is no msgpack tag, and that a msgpack tag wins when there is one.
func TestMsgpackUsesJSONTags(t *testing.T) {
	type tagged struct {
		Renamed string `json:"renamed"`
		Empty   string `json:"empty,omitempty"`
		Dropped string `json:"-"`
		Both    string `json:"json_name" msgpack:"mp_name"`
		Plain   int
	}
	c := codec.Msgpack()
	data, err := c.Marshal(tagged{Renamed: "r", Dropped: "d", Both: "b", Plain: 1})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := msgpack.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"renamed": "r", "mp_name": "b", "Plain": int8(1)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("encoded as %#v, want %#v", got, want)
	}
	var back tagged
	if err := c.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if (back != tagged{Renamed: "r", Both: "b", Plain: 1}) {
		t.Errorf("decoded %#v", back)
	}
}

// TestMsgpackSameStructsAsJSON checks a value sent as msgpack decodes to what the
// same value sent as json does.
func TestMsgpackSameStructsAsJSON(t *testing.T) {
	in := Order{ID: 9, Customer: "c", Total: 3.5, Items: []Item{{SKU: "x", Quantity: 1}}, Ship: &Address{City: "Oslo"}, Note: "dropped"}
	var viaJSON, viaMsgpack Order
	for _, step := range []struct {
		c   codec.Codec
		out *Order
	}{{codec.JSON(), &viaJSON}, {codec.Msgpack(), &viaMsgpack}} {
		data, err := step.c.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		if err := step.c.Unmarshal(data, step.out); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(viaJSON, viaMsgpack) {
		t.Errorf("json gave %#v\nmsgpack gave %#v", viaJSON, viaMsgpack)
	}
}

// TestMsgpackTimes checks times survive, including those whose extension payload
// starts with bytes that are also map headers (see msgpack_guard.go).
func TestMsgpackTimes(t *testing.T) {
	type stamped struct {
		At   time.Time         `json:"at"`
		Meta map[string]string `json:"meta"`
		Any  any               `json:"any"`
	}
	c := codec.Msgpack()
	for _, tm := range []time.Time{
		time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC),
		time.Unix(1700000000, 0x85<<22),   // fixext8 payload starts 0x85, a fixmap
		time.Unix(1700000000, 0xc0<<22),   // ... 0xc0, nil
		time.Unix(1700000000, 0xdf<<22+1), // ... 0xdf, map32
		time.Unix(0xdf000000, 0),          // fixext4 payload starts 0xdf
		time.Unix(1<<40, 0xde<<22),        // ext8 with 12 bytes
		{},
	} {
		t.Run(tm.String(), func(t *testing.T) {
			data, err := c.Marshal(stamped{At: tm, Meta: map[string]string{"k": "v"}, Any: tm})
			if err != nil {
				t.Fatal(err)
			}
			var got stamped
			if err := c.Unmarshal(data, &got); err != nil {
				t.Fatalf("Unmarshal(% x): %v", data, err)
			}
			if !got.At.Equal(tm) {
				t.Errorf("At = %v, want %v", got.At, tm)
			}
			if at, ok := got.Any.(time.Time); !ok || !at.Equal(tm) {
				t.Errorf("Any = %#v, want %v", got.Any, tm)
			}
		})
	}
}

// TestMsgpackHostileInput checks input that would make the msgpack library allocate
// gigabytes, recurse until the stack runs out or panic is refused with an error.
func TestMsgpackHostileInput(t *testing.T) {
	huge := []byte{0xff, 0xff, 0xff, 0xff}
	cases := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"truncated int", []byte{0xcd, 0x01}},
		{"trailing bytes", []byte{0x80, 0x00}},
		{"never-used code", []byte{0xc1}},
		{"array32 of 4G", cat([]byte{0xdd}, huge)},
		{"map32 of 4G", cat([]byte{0xdf}, huge)},
		{"str32 of 4G", cat([]byte{0xdb}, huge, []byte("abc"))},
		{"bin32 of 4G", cat([]byte{0xc6}, huge, []byte("abc"))},
		{"ext32 of 4G", cat([]byte{0xc9}, huge, []byte{0x01, 0x00})},
		{"array16 longer than input", []byte{0xdc, 0xff, 0xff, 0x01, 0x02}},
		{"nested claims", cat(bytes.Repeat([]byte{0xdc, 0x00, 0x10}, 4), []byte{0x01})},
		{"deep nesting", cat(bytes.Repeat([]byte{0x91}, 200000), []byte{0xc0})},
		{"deep maps", cat(bytes.Repeat([]byte{0x81, 0xa1, 'k'}, 20000), []byte{0xc0})},
		{"unhashable key", []byte{0x81, 0x90, 0x01}},
	}
	targets := []struct {
		name string
		new  func() any
	}{
		{"interface", func() any { return new(any) }},
		{"map", func() any { return new(map[string]any) }},
		{"any map", func() any { return new(map[any]any) }},
		{"slice", func() any { return new([]any) }},
		{"bytes", func() any { return new([]byte) }},
		{"struct", func() any { return new(Order) }},
	}
	c := codec.Msgpack()
	for _, tc := range cases {
		for _, target := range targets {
			t.Run(tc.name+"/"+target.name, func(t *testing.T) {
				if err := c.Unmarshal(tc.data, target.new()); err == nil {
					t.Errorf("Unmarshal(%.16x...) = nil error, want an error", tc.data)
				}
			})
		}
	}
}

// TestMsgpackExtensionAsMap checks the library's habit of reading an extension's
// payload as a map, where a map is expected, cannot be used to smuggle unchecked
// lengths past the guard, while well-formed payloads still decode.
func TestMsgpackExtensionAsMap(t *testing.T) {
	type target struct {
		M map[string]any `json:"m"`
		N []any          `json:"n"`
	}
	// {"m": ext(type 1, fixext16: {"k": array32 claiming 4G, ...}), "n": [...]}
	payload := cat([]byte{0x81, 0xa1, 'k', 0xdd}, []byte{0xff, 0xff, 0xff, 0xff}, make([]byte, 8))
	attack := cat([]byte{0x82, 0xa1, 'm', 0xd8, 0x01}, payload, []byte{0xa1, 'n', 0x90})
	c := codec.Msgpack()
	var v target
	if err := c.Unmarshal(attack, &v); err == nil {
		t.Fatalf("Unmarshal(% x) = nil error, want an error", attack)
	}
	// The same trick with nil, then unchecked bytes.
	nilAttack := cat([]byte{0x82, 0xa1, 'm', 0xd7, 0x01, 0xc0, 0xdf}, []byte{0xff, 0xff, 0xff, 0xff}, []byte{0x00, 0x00}, []byte{0xa1, 'n', 0x90})
	if err := c.Unmarshal(nilAttack, &v); err == nil {
		t.Fatalf("Unmarshal(% x) = nil error, want an error", nilAttack)
	}
	// A payload that is itself well-formed msgpack stays readable as a map: the
	// library does this on purpose and the guard must not break it.
	wellFormed := cat([]byte{0x82, 0xa1, 'm', 0xd6, 0x01, 0x81, 0xa1, 'k', 0x07}, []byte{0xa1, 'n', 0x90})
	v = target{}
	if err := c.Unmarshal(wellFormed, &v); err != nil {
		t.Fatalf("Unmarshal(% x): %v", wellFormed, err)
	}
	if want := map[string]any{"k": int8(7)}; !reflect.DeepEqual(v.M, want) {
		t.Errorf("M = %#v, want %#v", v.M, want)
	}
}

// TestMsgpackConcurrent checks pooled encoders and decoders are not shared between
// goroutines (run with -race).
func TestMsgpackConcurrent(t *testing.T) {
	c := codec.Msgpack()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				in := Order{ID: int64(g*1000 + i), Customer: fmt.Sprint("c", g, i), Items: make([]Item, i%5)}
				data, err := c.Marshal(in)
				if err != nil {
					errs <- err
					return
				}
				var out Order
				if err := c.Unmarshal(data, &out); err != nil {
					errs <- err
					return
				}
				if out.ID != in.ID || out.Customer != in.Customer || len(out.Items) != len(in.Items) {
					errs <- fmt.Errorf("got %+v for %+v", out, in)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestMsgpackBigValue checks values past the pooled buffer size round-trip.
func TestMsgpackBigValue(t *testing.T) {
	c := codec.Msgpack()
	big := make([]string, 5000)
	for i := range big {
		big[i] = fmt.Sprintf("value-%06d-%s", i, bytes.Repeat([]byte{'x'}, i%40))
	}
	for range 2 {
		data, err := c.Marshal(big)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		if err := c.Unmarshal(data, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, big) {
			t.Fatal("big slice did not round-trip")
		}
	}
	// 4-byte length headers are honoured when the bytes are really there.
	str32 := cat([]byte{0xdb}, binary.BigEndian.AppendUint32(nil, 70000), bytes.Repeat([]byte{'a'}, 70000))
	var s string
	if err := c.Unmarshal(str32, &s); err != nil || len(s) != 70000 {
		t.Fatalf("str32: len %d, err %v", len(s), err)
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
