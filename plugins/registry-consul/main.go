// Command micro-registry-consul serves a Consul registry as a Microhost plugin.
//
// Each node is one Consul service instance, registered with the configured
// agent: service ID = node ID (stable across restarts), Name = service name,
// Address and Port split from the node's host:port, tags "version=<v>" and
// "micro". Meta holds "version", service metadata as "svc-<key>", node metadata
// as "node-<key>" and the endpoints as JSON cut into "endpoints-0", "-1", ...
// Consul limits Meta to 64 pairs, keys of [A-Za-z0-9_-] up to 128 bytes and
// values up to 512 bytes: metadata that does not fit is refused with
// registry.ErrInvalidService; endpoints that do not fit are left out with a
// warning (discovery does not need them).
//
// A node registered with a TTL gets a Consul TTL check. While its registration
// lives (until ttl after the last Register) the plugin passes the check every
// ttl/3 and registers the instance again if Consul lost it (an agent restart);
// once nobody registers it again, Consul marks it critical after ttl, and
// removes it after deregister_critical_after. GetService returns passing
// instances only. Watch follows Consul with blocking queries on the catalog and
// on each service's health. Drain deregisters everything the plugin registered.
package main

import "github.com/microhost/micro/sdk/plugin"

var version = "0.1.0"

func main() {
	plugin.Serve(plugin.Info{
		Name:         "consul",
		Kind:         plugin.KindRegistry,
		Version:      version,
		ConfigSchema: configSchema,
		Capabilities: []string{"watch", "ttl"},
	}, newRegistry(plugin.Logger("registry-consul")))
}
