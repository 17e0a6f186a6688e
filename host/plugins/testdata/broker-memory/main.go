// Command micro-broker-memory serves the built-in memory broker as a plugin, for
// tests. It counts what it publishes in a metric of its own, which the host
// exposes labelled by plugin.
package main

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/microhost/micro/sdk/broker"
	"github.com/microhost/micro/sdk/plugin"
)

// counting publishes through the memory broker and counts the messages.
type counting struct {
	broker.Broker
	published prometheus.Counter
}

func (c *counting) Publish(ctx context.Context, topic string, msg *broker.Message) error {
	err := c.Broker.Publish(ctx, topic, msg)
	if err == nil {
		c.published.Inc()
	}
	return err
}

func main() {
	published := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "broker_memory_messages_published_total",
		Help: "Messages the test memory broker published.",
	})
	plugin.Serve(plugin.Info{Name: "memory", Kind: plugin.KindBroker, Version: "0.0.1"},
		&counting{Broker: broker.NewMemory(), published: published}, plugin.WithMetrics(published))
}
