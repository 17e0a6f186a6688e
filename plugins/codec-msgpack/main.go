// Command micro-codec-msgpack serves the built-in msgpack codec as a plugin.
package main

import (
	"github.com/microhost/micro/sdk/codec"
	"github.com/microhost/micro/sdk/plugin"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0"

func main() {
	plugin.Serve(plugin.Info{Name: "msgpack", Kind: plugin.KindCodec, Version: version}, codec.Msgpack())
}
