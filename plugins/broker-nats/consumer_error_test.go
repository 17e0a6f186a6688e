package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

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

// TestConsumerLostForGoodIsReported deletes the stream under a subscription:
// its consumer goes with it and cannot be made again, and the broker's error
// hook hears it once instead of the subscription going silent.
func TestConsumerLostForGoodIsReported(t *testing.T) {
	_, js, reported := subscribeReporting(t, "lost")
	// Delete the stream while the subscription's pull waits on the server,
	// which then tells it the consumer is gone (without a pull waiting, only
	// missed heartbeats would, seconds later).
	name := onlyConsumer(t, js)
	waitUntil(t, "the subscription's pull to reach the server", func() bool {
		c, err := js.Consumer(t.Context(), defaultStream, name)
		return err == nil && c.CachedInfo().NumWaiting > 0
	})
	if err := js.DeleteStream(t.Context(), defaultStream); err != nil {
		t.Fatal(err)
	}
	expectLostReport(t, reported)
	select {
	case err := <-reported:
		t.Errorf("reported twice: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestStreamLostUnnoticedIsReported is TestConsumerLostForGoodIsReported when
// the server's word of the deletion never reaches the consume loop, which
// then only misses heartbeats: finding the stream gone must count as finding
// the consumer gone, and be reported, not retried in silence.
func TestStreamLostUnnoticedIsReported(t *testing.T) {
	ss, js, reported := subscribeReporting(t, "unnoticed")
	ss.mu.Lock()
	loop := ss.consuming
	ss.mu.Unlock()
	loop.Stop() // so that no word of the deletion comes
	if err := js.DeleteStream(t.Context(), defaultStream); err != nil {
		t.Fatal(err)
	}
	ss.consumeFailed(ss.consumer, jetstream.ErrNoHeartbeat)
	expectLostReport(t, reported)
}

// subscribeReporting subscribes to prefix.x on a JetStream broker of its own
// server and returns the subscription, a client straight to the server, and
// what the broker's error hook hears.
func subscribeReporting(t *testing.T, prefix string) (*subscription, jetstream.JetStream, <-chan error) {
	t.Helper()
	s := startServer(t, t.TempDir(), server.RANDOM_PORT)
	reported := make(chan error, 8)
	b := openBroker(t, s.ClientURL(), jetStreamConfig(prefix+".>"), func(_ string, err error) { reported <- err })
	sub, err := b.Subscribe(t.Context(), prefix+".x", func(context.Context, broker.Delivery) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return sub.(*subscription), jetStreamClient(t, s.ClientURL()), reported
}

// expectLostReport waits for the report that a consumer is gone for good.
func expectLostReport(t *testing.T, reported <-chan error) {
	t.Helper()
	err := receive(t, reported, "the report of the lost consumer")
	if !strings.Contains(err.Error(), "making it again failed") || !strings.Contains(err.Error(), defaultStream) {
		t.Errorf("report %v does not say the consumer could not be made again on stream %s", err, defaultStream)
	}
}
