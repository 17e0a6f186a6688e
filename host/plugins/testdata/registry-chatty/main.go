// Command micro-registry-chatty prints to stdout before serving, which must not
// break the handshake.
package main

import (
	"fmt"

	"github.com/microhost/micro/sdk/plugin"
	"github.com/microhost/micro/sdk/registry"
)

func main() {
	fmt.Println("hello from a chatty plugin, before Serve")
	plugin.Serve(plugin.Info{Name: "chatty", Kind: plugin.KindRegistry, Version: "0.0.1"}, registry.NewMemory())
}
