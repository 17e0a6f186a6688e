// Package codec defines how Microhost turns values into bytes and back, the built-in
// json and msgpack codecs, and HTTP-style content negotiation between them.
package codec

// Codec marshals and unmarshals values for one content type.
type Codec interface {
	// Name is the short name used in config ("json", "msgpack").
	Name() string
	// ContentType is the canonical media type, without parameters.
	ContentType() string
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}
