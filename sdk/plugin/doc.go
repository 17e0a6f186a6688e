// Package plugin is what a Microhost plugin author imports: Serve runs a registry,
// broker, transport or codec as an out-of-process plugin over gRPC (HashiCorp
// go-plugin, mutual TLS), and the adapters here turn the protocol back into the
// same Go interfaces the built-ins have, on the host side.
//
// A plugin kind maps to a contract: "registry" → registry.Registry, "broker" →
// broker.Broker, "transport" → transport.Transport, "codec" → codec.Codec.
package plugin
