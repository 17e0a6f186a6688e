// Command micro-transport-http serves the built-in http transport as a plugin.
package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/microhost/micro/sdk/plugin"
	"github.com/microhost/micro/sdk/transport"
)

var version = "0.1.0"

// schema is the config block this plugin accepts.
const schema = `{
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "http2": {"type": "boolean", "description": "call over HTTP/2 (h2c) instead of HTTP/1.1"},
    "max_body_bytes": {"type": "integer", "minimum": 1, "description": "largest body accepted or sent"}
  }
}`

type config struct {
	HTTP2        bool  `json:"http2"`
	MaxBodyBytes int64 `json:"max_body_bytes"`
}

// httpPlugin is the built-in transport, rebuilt from config at Configure.
type httpPlugin struct{ *transport.HTTP }

func (p *httpPlugin) Configure(ctx context.Context, raw json.RawMessage) error {
	var c config
	if err := json.Unmarshal(raw, &c); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	p.HTTP.Close()
	p.HTTP = transport.NewHTTP(transport.HTTP2(c.HTTP2), transport.MaxBodyBytes(c.MaxBodyBytes))
	return nil
}

func main() {
	plugin.Serve(plugin.Info{Name: "http", Kind: plugin.KindTransport, Version: version, ConfigSchema: schema, Capabilities: []string{"stream"}},
		&httpPlugin{HTTP: transport.NewHTTP()})
}
