package codec

import (
	gojson "github.com/goccy/go-json"
)

// JSON returns the built-in json codec (application/json). It is a drop-in for
// encoding/json — struct tags, omitempty, HTML escaping, unknown fields ignored,
// numbers into interface{} as float64 — on github.com/goccy/go-json for speed.
func JSON() Codec { return jsonCodec{} }

// jsonCodec is stateless: go-json keeps its own per-type caches and buffer pools.
type jsonCodec struct{}

// Name implements Codec.
func (jsonCodec) Name() string { return "json" }

// ContentType implements Codec.
func (jsonCodec) ContentType() string { return "application/json" }

// Marshal returns the JSON encoding of v, exactly as encoding/json.Marshal would.
func (jsonCodec) Marshal(v any) ([]byte, error) { return gojson.Marshal(v) }

// Unmarshal decodes one JSON value from data into v; malformed input, trailing data
// and an empty body are errors, as with encoding/json.Unmarshal.
func (jsonCodec) Unmarshal(data []byte, v any) error { return gojson.Unmarshal(data, v) }
