// Command micro-transport-grpconly serves the built-in http transport as a
// plugin without the data path, as plugins built before it do: the host must
// fall back to the gRPC channel for calls and requests.
package main

import (
	"github.com/microhost/micro/sdk/plugin"
	"github.com/microhost/micro/sdk/transport"
)

func main() {
	plugin.Serve(plugin.Info{Name: "grpconly", Kind: plugin.KindTransport, Version: "0.1.0"},
		transport.NewHTTP(), plugin.WithoutDataPath())
}
