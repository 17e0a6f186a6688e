package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/microhost/micro/sdk/codec"
	"github.com/microhost/micro/sdk/errors"
	pluginv1 "github.com/microhost/micro/sdk/plugin/proto/micro/plugin/v1"
)

// maxJSONDepth bounds the nesting Encode accepts, the limit encoding/json and the
// built-in msgpack codec apply.
const maxJSONDepth = 10000

// JSONTranscoder is implemented by a codec that converts between its format and
// JSON directly. NewCodecServer then uses it instead of going through Go values,
// keeping what that path cannot: byte strings, float widths, the order of keys
// the codec decodes.
type JSONTranscoder interface {
	// FromJSON converts one JSON value to the codec's format.
	FromJSON(js []byte) ([]byte, error)
	// ToJSON converts one value in the codec's format to JSON.
	ToJSON(data []byte) ([]byte, error)
}

// codecServer serves a codec.Codec to the host: the plugin side of the codec kind.
type codecServer struct {
	pluginv1.UnimplementedCodecServer
	c      codec.Codec
	json   codec.Codec
	direct JSONTranscoder // c, when it transcodes by itself
	// ordered: c writes a jsonObject as a map in member order (it honours
	// msgpack.CustomEncoder or json.Marshaler), so objects keep the order of the
	// host's struct fields instead of Go's random map order.
	ordered bool
}

// NewCodecServer serves c over the Codec service. Encode turns the host's JSON
// into c's format and Decode turns c's format into JSON; integers stay integers
// (not float64), and objects keep their key order when c honours
// msgpack.CustomEncoder or json.Marshaler, as the built-in codecs do.
func NewCodecServer(c codec.Codec) pluginv1.CodecServer {
	s := &codecServer{c: c, json: codec.JSON()}
	if tc, ok := c.(JSONTranscoder); ok {
		s.direct = tc
	} else {
		s.ordered = keepsMemberOrder(c)
	}
	return s
}

// Encode converts JSON to c's format.
func (s *codecServer) Encode(_ context.Context, req *pluginv1.EncodeRequest) (*pluginv1.EncodeResponse, error) {
	var out []byte
	var err error
	if s.direct != nil {
		out, err = s.direct.FromJSON(req.GetJson())
	} else {
		var v any
		v, err = parseJSONValue(req.GetJson(), s.ordered)
		if err != nil {
			return nil, ToStatus(errors.BadRequest("", "codec %s: the host sent malformed JSON: %v", s.c.Name(), err))
		}
		out, err = s.c.Marshal(v)
	}
	if err != nil {
		return nil, ToStatus(errors.Internal("", "codec %s cannot encode the value: %v", s.c.Name(), err))
	}
	if len(out)+frameOverhead > wireLimit {
		return nil, ToStatus(errors.PayloadTooLarge("", "codec %s: the encoded value of %d bytes is over the plugin boundary's %d byte limit", s.c.Name(), len(out), wireLimit))
	}
	return &pluginv1.EncodeResponse{Data: out}, nil
}

// Decode converts c's format to JSON.
func (s *codecServer) Decode(_ context.Context, req *pluginv1.DecodeRequest) (*pluginv1.DecodeResponse, error) {
	var js []byte
	var err error
	if s.direct != nil {
		js, err = s.direct.ToJSON(req.GetData())
	} else {
		var v any
		if err = s.c.Unmarshal(req.GetData(), &v); err == nil {
			if v, err = jsonSafe(v); err == nil {
				js, err = s.json.Marshal(v)
			}
		}
	}
	if err != nil {
		return nil, ToStatus(errors.BadRequest("", "codec %s cannot decode the data: %v", s.c.Name(), err))
	}
	if len(js)+frameOverhead > wireLimit {
		return nil, ToStatus(errors.PayloadTooLarge("", "codec %s: the decoded value of %d JSON bytes is over the plugin boundary's %d byte limit", s.c.Name(), len(js), wireLimit))
	}
	return &pluginv1.DecodeResponse{Json: js}, nil
}

// keepsMemberOrder reports whether c encodes a jsonObject as a map with its
// members, which it does only when it honours one of jsonObject's encoder
// interfaces; otherwise Encode gives c plain maps. A codec that panics on the
// probe does not keep order.
func keepsMemberOrder(c codec.Codec) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	b, err := c.Marshal(jsonObject{{"b", int64(1)}, {"a", "x"}})
	if err != nil {
		return false
	}
	var v any
	if c.Unmarshal(b, &v) != nil {
		return false
	}
	if v, err = jsonSafe(v); err != nil {
		return false
	}
	m, isMap := v.(map[string]any)
	return isMap && len(m) == 2 && fmt.Sprint(m["b"]) == "1" && m["a"] == "x"
}

// jsonObject is a JSON object that keeps its members in document order.
type jsonObject []jsonMember

// jsonMember is one name/value pair of a jsonObject.
type jsonMember struct {
	Name  string
	Value any
}

// EncodeMsgpack writes o as a msgpack map in member order (msgpack.CustomEncoder),
// byte for byte what the msgpack codec writes for a struct with those fields.
func (o jsonObject) EncodeMsgpack(enc *msgpack.Encoder) error {
	if err := enc.EncodeMapLen(len(o)); err != nil {
		return err
	}
	for _, m := range o {
		if err := enc.EncodeString(m.Name); err != nil {
			return err
		}
		if err := enc.Encode(m.Value); err != nil {
			return err
		}
	}
	return nil
}

// MarshalJSON writes o as a JSON object in member order (json.Marshaler).
func (o jsonObject) MarshalJSON() ([]byte, error) {
	buf := []byte{'{'}
	for i, m := range o {
		if i > 0 {
			buf = append(buf, ',')
		}
		k, err := json.Marshal(m.Name)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(m.Value)
		if err != nil {
			return nil, err
		}
		buf = append(append(append(buf, k...), ':'), v...)
	}
	return append(buf, '}'), nil
}

// parseJSONValue reads exactly one JSON value into Go values a codec can encode:
// objects as jsonObject (ordered) or map[string]any, arrays as []any, integers as
// int64 or uint64 when they fit, other numbers as float64.
func parseJSONValue(data []byte, ordered bool) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := readJSONValue(dec, ordered, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("data after the JSON value")
	}
	return v, nil
}

func readJSONValue(dec *json.Decoder, ordered bool, depth int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	switch t := tok.(type) {
	case json.Number:
		return jsonNumber(t)
	case json.Delim:
		if depth >= maxJSONDepth {
			return nil, fmt.Errorf("JSON nested deeper than %d levels", maxJSONDepth)
		}
		switch t {
		case '{':
			return readJSONObject(dec, ordered, depth)
		case '[':
			arr := []any{}
			for dec.More() {
				v, err := readJSONValue(dec, ordered, depth+1)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			_, err := dec.Token() // ']'
			return arr, err
		}
		return nil, fmt.Errorf("unexpected %q", t)
	}
	return tok, nil // string, bool or nil
}

func readJSONObject(dec *json.Decoder, ordered bool, depth int) (any, error) {
	var obj jsonObject
	var m map[string]any
	if ordered {
		obj = jsonObject{}
	} else {
		m = map[string]any{}
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, _ := tok.(string)
		v, err := readJSONValue(dec, ordered, depth+1)
		if err != nil {
			return nil, err
		}
		if ordered {
			obj = append(obj, jsonMember{name, v})
		} else {
			m[name] = v
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, err
	}
	if ordered {
		return obj, nil
	}
	return m, nil
}

// jsonNumber is n as int64, else uint64, else float64.
func jsonNumber(n json.Number) (any, error) {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, nil
		}
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			return u, nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("number %s: %w", s, err)
	}
	return f, nil
}

// jsonSafe rewrites what a codec decoded into `any` so JSON can encode it: maps
// with interface keys (map[any]any, as many msgpack decoders produce) become
// map[string]any at every depth, keys written as JSON writes map keys (numbers in
// decimal). NaN and infinities, which JSON cannot hold, are errors.
func jsonSafe(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			y, err := jsonSafe(x)
			if err != nil {
				return nil, err
			}
			t[k] = y
		}
		return t, nil
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			key, err := jsonKey(k)
			if err != nil {
				return nil, err
			}
			if out[key], err = jsonSafe(x); err != nil {
				return nil, err
			}
		}
		return out, nil
	case []any:
		for i, x := range t {
			y, err := jsonSafe(x)
			if err != nil {
				return nil, err
			}
			t[i] = y
		}
		return t, nil
	case float64:
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return nil, fmt.Errorf("%v cannot be written as JSON", t)
		}
	case float32:
		if math.IsNaN(float64(t)) || math.IsInf(float64(t), 0) {
			return nil, fmt.Errorf("%v cannot be written as JSON", t)
		}
	}
	return v, nil
}

// jsonKey is a decoded map key as a JSON object name.
func jsonKey(k any) (string, error) {
	switch t := k.(type) {
	case string:
		return t, nil
	case []byte:
		return string(t), nil
	case bool:
		return strconv.FormatBool(t), nil
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return fmt.Sprint(t), nil
	case float32:
		return strconv.FormatFloat(float64(t), 'g', -1, 32), nil
	case float64:
		return strconv.FormatFloat(t, 'g', -1, 64), nil
	case nil:
		return "null", nil
	}
	return "", fmt.Errorf("a map key of type %T cannot be a JSON object name", k)
}
