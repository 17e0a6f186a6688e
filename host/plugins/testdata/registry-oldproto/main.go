// Command micro-registry-oldproto claims an old protocol version, which the host
// must refuse.
package main

import (
	"github.com/microhost/micro/sdk/plugin"
	"github.com/microhost/micro/sdk/registry"
)

func main() {
	plugin.Serve(plugin.Info{Name: "oldproto", Kind: plugin.KindRegistry, Version: "0.0.1"}, registry.NewMemory(),
		plugin.WithProtocolVersions(0))
}
