package main

import (
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/microhost/micro/sdk/broker"
)

// TestConsumerCreateErrors checks a subscription whose consumer cannot be made
// says why: a topic outside the stream's subjects points at
// jetstream.subjects; a server that is away does not.
func TestConsumerCreateErrors(t *testing.T) {
	s := startServer(t, t.TempDir(), server.RANDOM_PORT)
	cfg := jetStreamConfig("orders.>")
	cfg["timeout_ms"] = 300
	b := openBroker(t, s.ClientURL(), cfg, nil)
	noop := func(context.Context, broker.Delivery) error { return nil }

	_, err := b.Subscribe(t.Context(), "elsewhere.x", noop)
	if err == nil || !strings.Contains(err.Error(), "jetstream.subjects") {
		t.Errorf("Subscribe outside the stream's subjects = %v, want an error naming jetstream.subjects", err)
	}

	s.Shutdown()
	s.WaitForShutdown()
	_, err = b.Subscribe(t.Context(), "orders.new", noop)
	if err == nil {
		t.Fatal("Subscribe with the server away succeeded")
	}
	if strings.Contains(err.Error(), "jetstream.subjects") {
		t.Errorf("Subscribe with the server away = %v, blames jetstream.subjects", err)
	}
	if !strings.Contains(err.Error(), "connection to NATS is down") {
		t.Errorf("Subscribe with the server away = %v, does not say the connection is down", err)
	}
}
