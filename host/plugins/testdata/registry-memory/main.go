// Command micro-registry-memory serves the built-in memory registry as a plugin,
// for tests.
package main

import (
	"github.com/microhost/micro/sdk/plugin"
	"github.com/microhost/micro/sdk/registry"
)

func main() {
	plugin.Serve(plugin.Info{Name: "memory", Kind: plugin.KindRegistry, Version: "0.0.1",
		ConfigSchema: `{"type":"object","additionalProperties":false,"properties":{"zone":{"type":"string"}}}`},
		registry.NewMemory())
}
