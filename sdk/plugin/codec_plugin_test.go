package plugin_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	stderrors "errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"google.golang.org/grpc"

	"github.com/microhost/micro/sdk/codec"
	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/plugin"
	pluginv1 "github.com/microhost/micro/sdk/plugin/proto/micro/plugin/v1"
)

type cpInner struct {
	Label string   `json:"label"`
	Tags  []string `json:"tags"`
	Score float64  `json:"score"`
}

type cpValue struct {
	ID    int64             `json:"id"`
	Count uint32            `json:"count"`
	Neg   int               `json:"neg"`
	Big   uint64            `json:"big"`
	Name  string            `json:"name"`
	Ratio float64           `json:"ratio"`
	OK    bool              `json:"ok"`
	Skip  string            `json:"skip,omitempty"`
	Inner cpInner           `json:"inner"`
	List  []cpInner         `json:"list"`
	Ptr   *cpInner          `json:"ptr"`
	Attrs map[string]string `json:"attrs"`
	Tree  map[string]any    `json:"tree"`
	Raw   []byte            `json:"raw"`
}

// cpExact is a value whose msgpack bytes through the plugin equal the built-in
// codec's: one-key maps (Go's map order is random in the built-in's output), no
// []byte, no integral floats.
func cpExact() cpValue {
	return cpValue{
		ID: 42, Count: 70000, Neg: -5, Big: math.MaxUint64,
		Name:  "héllo, 世界 🚀 <tag> & \"quotes\"",
		Ratio: 1.5, OK: true,
		Inner: cpInner{Label: "in", Tags: []string{"a", "b"}, Score: -0.25},
		List:  []cpInner{{Label: "x", Tags: []string{}, Score: 3.75}, {Label: "y", Score: 1e-9}},
		Attrs: map[string]string{"k": "v"},
		Tree:  map[string]any{"nested": map[string]any{"deep": []any{int64(1), "two", nil, true, -300}}},
	}
}

// cpFull is a value with everything: multi-key nested maps, bytes, integral floats.
func cpFull() cpValue {
	v := cpExact()
	v.Ptr = &cpInner{Label: "ptr", Score: 2}
	v.Attrs = map[string]string{"a": "1", "b": "2", "ü": "3"}
	v.Tree = map[string]any{
		"n": 1.5, "s": "x", "t": true, "z": nil,
		"nested": map[string]any{"list": []any{"a", 2.0, false, nil, map[string]any{"m": "v", "k": 10.0}}, "empty": map[string]any{}},
	}
	v.Raw = []byte{0, 1, 2, 0xff, 'h', 'i'}
	return v
}

func cpClient(t *testing.T, cc grpc.ClientConnInterface, name string) codec.Codec {
	t.Helper()
	return plugin.NewCodecClient(&pluginv1.DescribeResponse{
		Name: name, Kind: "codec", ContentType: "application/" + name,
		Aliases: []string{"application/x-" + name},
	}, plugin.StaticConn(cc))
}

func TestCodecPluginMsgpackSameBytes(t *testing.T) {
	p := startTPPlugin(t)
	c := cpClient(t, p.cc, "msgpack")
	builtin := codec.Msgpack()

	v := cpExact()
	got, err := c.Marshal(v)
	if err != nil {
		t.Fatalf("Marshal through the plugin: %v", err)
	}
	want, err := builtin.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("plugin bytes differ from the built-in's:\nplugin:  %x\nbuiltin: %x", got, want)
	}
}

func TestCodecPluginMsgpackDocumentedDifferences(t *testing.T) {
	p := startTPPlugin(t)
	c := cpClient(t, p.cc, "msgpack")
	builtin := codec.Msgpack()
	type floats struct {
		F64 float64 `json:"f64"`
		F32 float32 `json:"f32"`
	}
	for _, tc := range []struct {
		name   string
		v      any
		plugin []byte // what the plugin writes; the comment says what the built-in writes
	}{
		// built-in: cb 4000000000000000 (float64 2.0); JSON says "2", an integer.
		{"integral float64", floats{F64: 2}, []byte("\x82\xa3f64\x02\xa3f32\x00")},
		// built-in: ca 3fc00000 (float32 1.5); JSON has no width, so float64.
		{"float32", floats{F32: 1.5}, []byte("\x82\xa3f64\x00\xa3f32\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00")},
		// built-in: c4 02 6869 (bin); JSON carries []byte as base64 text.
		{"bytes", []byte("hi"), []byte("\xa4aGk=")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Marshal(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.plugin) {
				t.Fatalf("plugin wrote %x, want %x", got, tc.plugin)
			}
			if want, _ := builtin.Marshal(tc.v); bytes.Equal(got, want) {
				t.Fatalf("the difference is gone (%x): update the docs and this test", got)
			}
			// Either way the host reads back what it wrote.
			back := reflect.New(reflect.TypeOf(tc.v))
			if err := c.Unmarshal(got, back.Interface()); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back.Elem().Interface(), tc.v) {
				t.Fatalf("read back %#v, want %#v", back.Elem().Interface(), tc.v)
			}
		})
	}
}

func TestCodecPluginMsgpackRoundTrip(t *testing.T) {
	p := startTPPlugin(t)
	c := cpClient(t, p.cc, "msgpack")
	builtin := codec.Msgpack()
	v := cpFull()

	t.Run("host to plugin to host", func(t *testing.T) {
		data, err := c.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var back cpValue
		if err := c.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, v) {
			t.Fatalf("round trip:\n got %#v\nwant %#v", back, v)
		}
	})
	t.Run("built-in bytes decoded by the plugin", func(t *testing.T) {
		data, err := builtin.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var back cpValue
		if err := c.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, v) {
			t.Fatalf("built-in → plugin:\n got %#v\nwant %#v", back, v)
		}
	})
	t.Run("plugin bytes decoded by the built-in", func(t *testing.T) {
		data, err := c.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var back cpValue
		if err := builtin.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		// The one documented difference: []byte crosses JSON as base64 text, so the
		// plugin writes a msgpack str holding that text where the built-in writes bin.
		if want := base64.StdEncoding.EncodeToString(v.Raw); string(back.Raw) != want {
			t.Fatalf("Raw = %q, want the base64 text %q", back.Raw, want)
		}
		back.Raw = v.Raw
		// And integral floats cross JSON as integers, so inside `any` the built-in
		// reads 2.0 back as an integer: compare Tree by its JSON form.
		gotTree, _ := json.Marshal(back.Tree)
		wantTree, _ := json.Marshal(v.Tree)
		if string(gotTree) != string(wantTree) {
			t.Fatalf("Tree = %s, want %s", gotTree, wantTree)
		}
		back.Tree = v.Tree
		if !reflect.DeepEqual(back, v) {
			t.Fatalf("plugin → built-in:\n got %#v\nwant %#v", back, v)
		}
	})
	t.Run("into any", func(t *testing.T) {
		data, err := builtin.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var back any
		if err := c.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		m, _ := back.(map[string]any)
		tree, _ := m["tree"].(map[string]any)
		nested, _ := tree["nested"].(map[string]any)
		list, _ := nested["list"].([]any)
		inner, _ := list[len(list)-1].(map[string]any)
		if m["name"] != v.Name || m["big"] != float64(math.MaxUint64) || inner["k"] != 10.0 || inner["m"] != "v" {
			t.Fatalf("decoded into any: %#v", back)
		}
	})
}

// cpUntyped is msgpack whose maps decode into `any` as map[any]any, as many
// msgpack libraries do, and which reads integer keys.
type cpUntyped struct{}

func (cpUntyped) Name() string                  { return "untyped" }
func (cpUntyped) ContentType() string           { return "application/untyped" }
func (cpUntyped) Marshal(v any) ([]byte, error) { return msgpack.Marshal(v) }
func (cpUntyped) Unmarshal(data []byte, v any) error {
	dec := msgpack.NewDecoder(bytes.NewReader(data))
	dec.SetMapDecoder(func(d *msgpack.Decoder) (any, error) { return d.DecodeUntypedMap() })
	return dec.Decode(v)
}

func TestCodecPluginInterfaceKeys(t *testing.T) {
	p := startTPPluginWith(t, cpUntyped{})
	c := cpClient(t, p.cc, "untyped")

	data, err := msgpack.Marshal(map[int]any{1: map[any]any{"x": []any{map[bool]int{true: 7}}, 2.5: "f"}, -3: "neg"})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := c.Unmarshal(data, &got); err != nil {
		t.Fatalf("Unmarshal of interface-keyed maps: %v", err)
	}
	want := map[string]any{
		"1":  map[string]any{"x": []any{map[string]any{"true": 7.0}}, "2.5": "f"},
		"-3": "neg",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v\nwant %#v", got, want)
	}
}

func TestCodecPluginJSONSameBytes(t *testing.T) {
	p := startTPPluginWith(t, codec.JSON())
	c := cpClient(t, p.cc, "json")
	v := cpFull()
	got, err := c.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := codec.JSON().Marshal(v)
	if !bytes.Equal(got, want) {
		t.Fatalf("json through the plugin differs:\nplugin:  %s\nbuiltin: %s", got, want)
	}
}

// cpTranscoder converts to its format ("T:" + JSON) by itself.
type cpTranscoder struct{}

func (cpTranscoder) Name() string                       { return "t" }
func (cpTranscoder) ContentType() string                { return "application/t" }
func (cpTranscoder) Marshal(any) ([]byte, error)        { return nil, stderrors.New("not used") }
func (cpTranscoder) Unmarshal([]byte, any) error        { return stderrors.New("not used") }
func (cpTranscoder) FromJSON(js []byte) ([]byte, error) { return append([]byte("T:"), js...), nil }
func (cpTranscoder) ToJSON(data []byte) ([]byte, error) {
	js, ok := bytes.CutPrefix(data, []byte("T:"))
	if !ok {
		return nil, stderrors.New("no T: prefix")
	}
	return js, nil
}

func TestCodecPluginTranscoder(t *testing.T) {
	p := startTPPluginWith(t, cpTranscoder{})
	c := cpClient(t, p.cc, "t")
	data, err := c.Marshal(map[string]int{"a": 1})
	if err != nil || string(data) != `T:{"a":1}` {
		t.Fatalf("Marshal = %q, %v", data, err)
	}
	var back map[string]int
	if err := c.Unmarshal(data, &back); err != nil || back["a"] != 1 {
		t.Fatalf("Unmarshal = %v, %v", back, err)
	}
	if err := c.Unmarshal([]byte("nope"), &back); err == nil || !strings.Contains(err.Error(), "no T: prefix") {
		t.Fatalf("Unmarshal of bad data = %v", err)
	}
}

func TestCodecPluginDescribeAndErrors(t *testing.T) {
	p := startTPPlugin(t)
	c := cpClient(t, p.cc, "msgpack")
	if c.Name() != "msgpack" || c.ContentType() != "application/msgpack" {
		t.Fatalf("Name, ContentType = %q, %q", c.Name(), c.ContentType())
	}
	set := codec.NewSet(codec.JSON(), c)
	if got, err := set.ForContentType("application/x-msgpack; charset=binary", nil); err != nil || got != c {
		t.Fatalf("the alias does not select the plugin codec: %v, %v", got, err)
	}

	// Malformed input is a 400 from the plugin.
	var v cpValue
	err := c.Unmarshal([]byte{0xc1}, &v)
	var env *errors.Error
	if !stderrors.As(err, &env) || env.Code != 400 {
		t.Fatalf("Unmarshal of malformed msgpack: %v, want a 400 envelope", err)
	}
	// What JSON cannot hold fails on the host, before the plugin.
	if _, err := c.Marshal(math.NaN()); err == nil {
		t.Fatal("Marshal of NaN succeeded")
	}

	// While the plugin is down, calls fail fast with its 503.
	down := newTPSwitchConn(p.cc)
	down.down()
	dc := plugin.NewCodecClient(&pluginv1.DescribeResponse{Name: "msgpack"}, down)
	start := time.Now()
	_, err = dc.Marshal(1)
	if errors.Code(err) != 503 || time.Since(start) > time.Second {
		t.Fatalf("Marshal while down: %v after %v, want a fast 503", err, time.Since(start))
	}
	if err := dc.Unmarshal([]byte{0x01}, &v); errors.Code(err) != 503 {
		t.Fatalf("Unmarshal while down: %v, want 503", err)
	}
}
