package conformance_test

import (
	"testing"

	"github.com/microhost/micro/sdk/broker"
	"github.com/microhost/micro/sdk/codec"
	"github.com/microhost/micro/sdk/conformance"
	"github.com/microhost/micro/sdk/registry"
	"github.com/microhost/micro/sdk/transport"
)

// TestMemoryRegistry runs the registry suite against the built-in memory registry.
func TestMemoryRegistry(t *testing.T) {
	conformance.Registry(t, func(t *testing.T) registry.Registry {
		r := registry.NewMemory()
		t.Cleanup(func() { _ = r.Close() })
		return r
	})
}

// TestMemoryBroker runs the broker suite against the built-in memory broker.
func TestMemoryBroker(t *testing.T) {
	conformance.Broker(t, func(t *testing.T) broker.Broker {
		b := broker.NewMemory()
		t.Cleanup(func() { _ = b.Close() })
		return b
	})
}

// TestHTTPTransport runs the transport suite against the built-in http transport,
// calling over HTTP/1.1 and over HTTP/2 (h2c).
func TestHTTPTransport(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []transport.HTTPOption
	}{
		{"HTTP1", nil},
		{"HTTP2", []transport.HTTPOption{transport.HTTP2(true)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conformance.Transport(t, func(t *testing.T) transport.Transport {
				tr := transport.NewHTTP(tc.opts...)
				t.Cleanup(func() { _ = tr.Close() })
				return tr
			}, conformance.ExpectNotSent())
		})
	}
}

// TestBuiltinCodecs runs the codec suite against the built-in json and msgpack
// codecs.
func TestBuiltinCodecs(t *testing.T) {
	for _, newCodec := range []func() codec.Codec{codec.JSON, codec.Msgpack} {
		t.Run(newCodec().Name(), func(t *testing.T) {
			conformance.Codec(t, func(*testing.T) codec.Codec { return newCodec() })
		})
	}
}
