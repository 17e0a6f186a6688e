// Command micro-broker-memory serves the built-in memory broker as a plugin, for
// tests.
package main

import (
	"github.com/microhost/micro/sdk/broker"
	"github.com/microhost/micro/sdk/plugin"
)

func main() {
	plugin.Serve(plugin.Info{Name: "memory", Kind: plugin.KindBroker, Version: "0.0.1"}, broker.NewMemory())
}
