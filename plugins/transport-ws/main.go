// Command micro-transport-ws serves a WebSocket transport as a Microhost plugin:
// listeners upgrade requests on /_micro/ws, and callers multiplex calls and
// bidirectional streams over a few pooled WebSocket connections per address.
package main

import "github.com/microhost/micro/sdk/plugin"

var version = "0.1.0"

func main() {
	plugin.Serve(plugin.Info{
		Name:         "ws",
		Kind:         plugin.KindTransport,
		Version:      version,
		ConfigSchema: configSchema,
		Capabilities: []string{"stream"},
	}, newWS(defaultOptions()))
}
