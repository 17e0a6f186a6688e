// Command micro-broker-nats serves a NATS broker as a Microhost plugin: core
// NATS (at-most-once, queue groups, wildcards) or, with jetstream.enabled,
// JetStream (at-least-once with acks, redelivery and durable queue groups).
package main

import "github.com/microhost/micro/sdk/plugin"

var version = "0.1.0"

func main() {
	log := plugin.Logger("broker-nats")
	plugin.Serve(plugin.Info{
		Name:         "nats",
		Kind:         plugin.KindBroker,
		Version:      version,
		ConfigSchema: configSchema,
		Capabilities: []string{"queue", "ack", "jetstream"},
	}, newBroker(func(topic string, err error) {
		log.Warn("delivery failed", "topic", topic, "error", err)
	}))
}
