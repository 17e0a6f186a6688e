package plugin_test

import (
	"context"
	stderrors "errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/microhost/micro/sdk/broker"
	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/plugin"
	pluginv1 "github.com/microhost/micro/sdk/plugin/proto/micro/plugin/v1"
	"github.com/microhost/micro/sdk/registry"
)

// TestAdapterPluginRestart crashes plugin A, starts a fresh plugin B and switches
// the Conn over, as the host's supervisor does, and checks what callers see.
func TestAdapterPluginRestart(t *testing.T) {
	ctx := testCtx(t)
	baseline := runtime.NumGoroutine()

	a := startAdapterServer(t, newMemoryRegistry(t), newMemoryBroker(t))
	conn := newRestartConn(a.cc)
	reg := plugin.NewRegistryClient("test-plugin", conn)
	brk := plugin.NewBrokerClient("test-plugin", conn)
	cache := registry.NewCache(reg, registry.WithBackoff(5*time.Millisecond, 50*time.Millisecond))

	deliveries := make(chan got, 256)
	sub, err := brk.Subscribe(ctx, "events.>", func(_ context.Context, d broker.Delivery) error {
		deliveries <- got{topic: d.Topic(), body: string(d.Message().Body), attempt: d.Attempt()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, ctx, brk, "events.before", "0")
	publish(t, context.WithoutCancel(ctx), brk, "events.before", "1") // opens the shared publish stream on A
	expect(t, deliveries, "subscriber on A", "events.before:0", "events.before:1")

	w, err := reg.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	watchErr := make(chan error, 1)
	go func() {
		for {
			if _, err := w.Next(); err != nil {
				watchErr <- err
				return
			}
		}
	}()
	eventually(t, "the cache's watch on A to open", cache.Ready)
	applied := cache.Stats().Events
	if err := reg.Register(ctx, greeter("1", "a1"), 0); err != nil {
		t.Fatal(err)
	}
	if err := cache.WaitApplied(ctx, applied+1); err != nil {
		t.Fatal(err)
	}
	if svcs, err := cache.Lookup(ctx, "greeter"); err != nil || len(svcs) != 1 || svcs[0].Nodes[0].ID != "a1" {
		t.Fatalf("cache lookup on A = %v, %v", svcs, err)
	}

	// Plugin A crashes.
	conn.down()
	a.stop()

	// (c) The watcher on A ends with an error.
	err = receive(t, watchErr, "the watcher on A to fail")
	if stderrors.Is(err, registry.ErrWatcherStopped) || errors.Code(err) != 503 {
		t.Fatalf("Next after the crash = %v, want a 503 for the broken stream", err)
	}
	t.Logf("watcher on A ended with: %v", err)
	w.Stop()

	// (a) Calls during the gap fail fast with a 503 envelope.
	start := time.Now()
	_, err = reg.GetService(ctx, "greeter")
	if env := envelopeOf(t, err); env.Code != 503 {
		t.Fatalf("GetService while down = %v, want 503", err)
	}
	if env := envelopeOf(t, brk.Publish(ctx, "events.gap", &broker.Message{})); env.Code != 503 {
		t.Fatalf("Publish while down: code %d, want 503", env.Code)
	}
	if env := envelopeOf(t, brk.Publish(context.WithoutCancel(ctx), "events.gap", &broker.Message{})); env.Code != 503 {
		t.Fatalf("Publish (stream path) while down: code %d, want 503", env.Code)
	}
	_, err = brk.Subscribe(ctx, "events.gap", func(context.Context, broker.Delivery) error { return nil })
	if env := envelopeOf(t, err); env.Code != 503 {
		t.Fatalf("Subscribe while down: code %d, want 503", env.Code)
	}
	if _, err := reg.Watch(ctx); errors.Code(err) != 503 {
		t.Fatalf("Watch while down = %v, want 503", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("calls while down took %v: they must fail fast", d)
	}
	// The cache in front still answers with what it knew.
	if svcs, err := cache.Lookup(ctx, "greeter"); err != nil || svcs[0].Nodes[0].ID != "a1" {
		t.Fatalf("cache lookup while down = %v, %v; want the last known state", svcs, err)
	}

	// Plugin B starts and the supervisor announces the restart.
	b := startAdapterServer(t, newMemoryRegistry(t), newMemoryBroker(t))
	conn.up(b.cc)

	// (b) The subscription made on A receives what is published to B, with no
	// call from its owner.
	i := 0
	eventually(t, "the subscription to be re-opened on B", func() bool {
		i++
		publish(t, ctx, brk, "events.after", fmt.Sprint(i))
		select {
		case g := <-deliveries:
			return g.topic == "events.after"
		default:
			return false
		}
	})

	// The shared publish stream is re-opened on B too.
	for {
		select {
		case <-deliveries: // drain the polling's leftovers
			continue
		default:
		}
		break
	}
	publish(t, context.WithoutCancel(ctx), brk, "events.stream", "s")
	for g := receive(t, deliveries, "the stream-path publish on B"); g.topic != "events.stream"; g = receive(t, deliveries, "the stream-path publish on B") {
	}

	// The cache re-watched B and follows it.
	if err := reg.Register(ctx, greeter("1", "b1"), 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the cache to follow B", func() bool {
		svcs, err := cache.Lookup(ctx, "greeter")
		return cache.Stats().Watches >= 2 && err == nil && len(svcs) == 1 && len(svcs[0].Nodes) == 1 && svcs[0].Nodes[0].ID == "b1"
	})

	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	_ = cache.Close()
	_ = brk.Close()
	b.stop()
	settleGoroutines(t, baseline)
}

// TestAdapterPluginStoppedForGood checks that a subscription stops re-opening
// once the plugin is stopped for good, and lets its goroutines go.
func TestAdapterPluginStoppedForGood(t *testing.T) {
	ctx := testCtx(t)
	baseline := runtime.NumGoroutine()
	a := startAdapterServer(t, nil, newMemoryBroker(t))
	conn := newRestartConn(a.cc)
	brk := plugin.NewBrokerClient("test-plugin", conn)
	sub, err := brk.Subscribe(ctx, "x", func(context.Context, broker.Delivery) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	conn.stop()
	a.stop()
	// Nothing but the stop was called: the subscription gave up by itself.
	settleGoroutines(t, baseline)
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if env := envelopeOf(t, brk.Publish(ctx, "x", &broker.Message{})); env.Code != 503 {
		t.Fatalf("Publish after stop: code %d, want 503", env.Code)
	}
	_ = brk.Close()
}

// TestAdapterResubscribeWithoutRestartSignal breaks a stream on a StaticConn,
// which never reports a restart: the subscription re-opens on its backoff once
// the same address serves again.
func TestAdapterResubscribeWithoutRestartSignal(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for gRPC's reconnect backoff")
	}
	ctx := testCtx(t)
	a := startAdapterServer(t, nil, newMemoryBroker(t))
	brk := plugin.NewBrokerClient("test-plugin", plugin.StaticConn(a.cc))
	t.Cleanup(func() { _ = brk.Close() })
	deliveries, _ := collect(t, brk, "ping")

	// Kill the server but keep the client connection: it reconnects by itself.
	a.srv.Stop()
	<-a.served
	b := startAdapterServerOn(t, a.addr, nil, newMemoryBroker(t))
	_ = b

	i := 0
	eventually(t, "the subscription to be re-opened on the same address", func() bool {
		i++
		if err := brk.Publish(ctx, "ping", &broker.Message{Body: []byte(fmt.Sprint(i))}); err != nil {
			return false // the connection is still reconnecting
		}
		select {
		case <-deliveries:
			return true
		default:
			return false
		}
	})
}

// subscribed is what a broker was asked to subscribe: the topic and the
// subscription id.
type subscribed struct{ topic, id string }

// subscribeRecorder is a broker that reports the topic and subscription id of
// every Subscribe it serves.
type subscribeRecorder struct {
	broker.Broker
	subscribes chan subscribed
}

// newSubscribeRecorder records the subscribes of a memory broker closed at cleanup.
func newSubscribeRecorder(t *testing.T) *subscribeRecorder {
	return &subscribeRecorder{Broker: newMemoryBroker(t), subscribes: make(chan subscribed, 16)}
}

// Subscribe records the topic and id, then subscribes.
func (r *subscribeRecorder) Subscribe(ctx context.Context, topic string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscription, error) {
	r.subscribes <- subscribed{topic: topic, id: broker.NewSubscribeOptions(opts...).SubscriptionID}
	return r.Broker.Subscribe(ctx, topic, h, opts...)
}

// TestAdapterResubscribeKeepsSubscriptionID checks every Subscribe sends a
// subscription id of its own (the caller's, when it gave one) and re-opening the
// subscriptions on a restarted plugin sends each one's id again, so a plugin
// can resume what it kept for them.
func TestAdapterResubscribeKeepsSubscriptionID(t *testing.T) {
	ctx := testCtx(t)
	recA := newSubscribeRecorder(t)
	a := startAdapterServer(t, nil, recA)
	conn := newRestartConn(a.cc)
	brk := plugin.NewBrokerClient("test-plugin", conn)
	t.Cleanup(func() { _ = brk.Close() })

	noop := func(context.Context, broker.Delivery) error { return nil }
	subscribes := [][]broker.SubscribeOption{
		nil,
		nil, // the same topic again: another subscription, another id
		{broker.SubscriptionID("mailer")},
	}
	onA := map[subscribed]bool{}
	for i, opts := range subscribes {
		if _, err := brk.Subscribe(ctx, "orders.placed", noop, opts...); err != nil {
			t.Fatal(err)
		}
		s := receive(t, recA.subscribes, fmt.Sprintf("subscription %d on A", i))
		if s.id == "" || onA[s] {
			t.Fatalf("subscription %d reached the plugin with id %q; want one no other subscription has (so far: %v)", i, s.id, onA)
		}
		onA[s] = true
	}
	if !onA[subscribed{topic: "orders.placed", id: "mailer"}] {
		t.Fatalf("the caller's SubscriptionID did not reach the plugin as given: %v", onA)
	}

	// Plugin A crashes; plugin B starts and the supervisor announces it.
	conn.down()
	a.stop()
	recB := newSubscribeRecorder(t)
	b := startAdapterServer(t, nil, recB)
	conn.up(b.cc)

	onB := map[subscribed]bool{}
	for i := range subscribes {
		onB[receive(t, recB.subscribes, fmt.Sprintf("re-subscription %d on B", i))] = true
	}
	if !reflect.DeepEqual(onB, onA) {
		t.Fatalf("re-subscriptions on B = %v, want the same ids as on A: %v", onB, onA)
	}
}

// TestAdapterSubscribeWithoutSubscriptionID plays a host from before
// subscription ids: its SubscribeRequest carries none, and the plugin still
// subscribes and delivers.
func TestAdapterSubscribeWithoutSubscriptionID(t *testing.T) {
	ctx := testCtx(t)
	rec := newSubscribeRecorder(t)
	s := startAdapterServer(t, nil, rec)
	stream, err := pluginv1.NewBrokerClient(s.cc).Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&pluginv1.SubscribeClientMessage{Msg: &pluginv1.SubscribeClientMessage_Subscribe{
		Subscribe: &pluginv1.SubscribeRequest{Topic: "legacy"},
	}}); err != nil {
		t.Fatal(err)
	}
	if md, err := stream.Header(); err != nil || md == nil {
		t.Fatalf("the subscription without an id did not go live: %v", err)
	}
	if got := receive(t, rec.subscribes, "the subscribe"); got != (subscribed{topic: "legacy"}) {
		t.Fatalf("the broker was asked for %+v, want topic legacy and no subscription id", got)
	}
	if err := rec.Publish(ctx, "legacy", &broker.Message{Body: []byte("hi")}); err != nil {
		t.Fatal(err)
	}
	d, err := stream.Recv()
	if err != nil || string(d.GetMessage().GetBody()) != "hi" {
		t.Fatalf("delivery = %v, %v; want hi", d, err)
	}
	if err := stream.Send(&pluginv1.SubscribeClientMessage{Msg: &pluginv1.SubscribeClientMessage_Settle{
		Settle: &pluginv1.Settle{DeliveryId: d.GetId(), Ack: true},
	}}); err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("after CloseSend the stream ended with %v, want io.EOF", err)
	}
}

// TestAdapterRefusesSubscriptionIDInUse checks a subscription id given by the
// caller belongs to one live subscription at a time: a second Subscribe with it
// fails naming it, and once the first is unsubscribed the id is free again.
func TestAdapterRefusesSubscriptionIDInUse(t *testing.T) {
	ctx := testCtx(t)
	a := startAdapterServer(t, nil, newMemoryBroker(t))
	brk := plugin.NewBrokerClient("test-plugin", plugin.StaticConn(a.cc))
	t.Cleanup(func() { _ = brk.Close() })
	noop := func(context.Context, broker.Delivery) error { return nil }

	first, err := brk.Subscribe(ctx, "orders.placed", noop, broker.SubscriptionID("mailer"))
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"orders.placed", "orders.paid"} {
		sub, err := brk.Subscribe(ctx, topic, noop, broker.SubscriptionID("mailer"))
		if err == nil {
			_ = sub.Unsubscribe()
			t.Fatalf("a second subscription (to %q) took the id of a live one", topic)
		}
		if !strings.Contains(err.Error(), `"mailer"`) || !strings.Contains(err.Error(), "its own id") {
			t.Errorf("Subscribe with an id in use: %v; want an error naming the id and the fix", err)
		}
	}
	if err := first.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	again, err := brk.Subscribe(ctx, "orders.placed", noop, broker.SubscriptionID("mailer"))
	if err != nil {
		t.Fatalf("Subscribe with the id of an unsubscribed subscription: %v", err)
	}
	_ = again.Unsubscribe()
}

// endRecorder is a broker whose subscriptions are broker.Detachers that
// report how they ended: "unsubscribed" or "detached".
type endRecorder struct {
	broker.Broker
	ends chan string
}

func (r *endRecorder) Subscribe(ctx context.Context, topic string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscription, error) {
	sub, err := r.Broker.Subscribe(ctx, topic, h, opts...)
	if err != nil {
		return nil, err
	}
	return &endingSubscription{Subscription: sub, ends: r.ends}, nil
}

type endingSubscription struct {
	broker.Subscription
	ends chan string
}

func (s *endingSubscription) Unsubscribe() error {
	s.ends <- "unsubscribed"
	return s.Subscription.Unsubscribe()
}

func (s *endingSubscription) Detach() error {
	s.ends <- "detached"
	return s.Subscription.Unsubscribe()
}

// TestBrokerServerDetachesOnABrokenStream checks the plugin side of a
// Subscribe stream unsubscribes when the host ends the stream, and only
// detaches, keeping the broker's state for the subscription id, when the stream
// breaks: the host then subscribes again under the same id.
func TestBrokerServerDetachesOnABrokenStream(t *testing.T) {
	for _, tt := range []struct {
		name string
		end  func(stream pluginv1.Broker_SubscribeClient, cancel context.CancelFunc)
		want string
	}{
		{"host ends the stream", func(s pluginv1.Broker_SubscribeClient, _ context.CancelFunc) { _ = s.CloseSend() }, "unsubscribed"},
		{"stream breaks", func(_ pluginv1.Broker_SubscribeClient, cancel context.CancelFunc) { cancel() }, "detached"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := &endRecorder{Broker: newMemoryBroker(t), ends: make(chan string, 2)}
			s := startAdapterServer(t, nil, rec)
			ctx, cancel := context.WithCancel(testCtx(t))
			defer cancel()
			stream, err := pluginv1.NewBrokerClient(s.cc).Subscribe(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.Send(&pluginv1.SubscribeClientMessage{Msg: &pluginv1.SubscribeClientMessage_Subscribe{
				Subscribe: &pluginv1.SubscribeRequest{Topic: "orders", SubscriptionId: "mailer"},
			}}); err != nil {
				t.Fatal(err)
			}
			if _, err := stream.Header(); err != nil {
				t.Fatalf("the subscription did not go live: %v", err)
			}
			tt.end(stream, cancel)
			if got := receive(t, rec.ends, "the subscription's end"); got != tt.want {
				t.Fatalf("the subscription was %s, want %s", got, tt.want)
			}
		})
	}
}
