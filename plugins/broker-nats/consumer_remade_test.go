package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/microhost/micro/sdk/broker"
)

// TestJetStreamConsumerMadeAgainLosesNothing deletes a plain subscription's
// consumer while the subscriber's connection is away and publishes while no
// consumer exists. Once back, the subscription makes its consumer again from
// where it left off: every message stored in the gap arrives, so does one the
// handler nacked just before (the server never heard the nack), and nothing
// handled before arrives twice.
func TestJetStreamConsumerMadeAgainLosesNothing(t *testing.T) {
	t.Run("AfterHandling", func(t *testing.T) {
		g := newGapRig(t)
		holding := make(chan struct{}, 1)
		release := make(chan struct{})
		var hold sync.Once
		g.subscribe(t, func(ctx context.Context, body string) error {
			first := false
			if body == "nacked" {
				hold.Do(func() { first = true })
			}
			if !first {
				return nil
			}
			holding <- struct{}{}
			select {
			case <-release:
				return errors.New("not handled yet")
			case <-ctx.Done():
				return ctx.Err()
			}
		}, broker.Concurrency(2))
		g.publish(t, "before-0", "before-1", "before-2")
		g.expect(t, "before-0", "before-1", "before-2")
		g.publish(t, "nacked")
		receive(t, holding, "the delivery held until the connection is away")
		g.publish(t, "after-nacked") // handled while "nacked" waits: it must not come twice
		g.expect(t, "after-nacked")

		g.cutAndDelete(t)
		close(release) // the nack cannot reach the server
		g.publish(t, "gap-0", "gap-1", "gap-2", "gap-3", "gap-4")
		g.gate.reopen()
		g.expect(t, "nacked", "gap-0", "gap-1", "gap-2", "gap-3", "gap-4")
		g.expectNoMore(t)
	})

	t.Run("SubscribedAgainUnderItsID", func(t *testing.T) {
		// Made again from a sequence, the consumer is subscribed to again
		// under its id (the plugin restarted, say): the update must keep
		// where it started, which the server refuses to change.
		g := newGapRig(t)
		g.subscribe(t, func(context.Context, string) error { return nil }, broker.SubscriptionID("keeper"))
		g.publish(t, "before")
		g.expect(t, "before")
		g.cutAndDelete(t)
		g.publish(t, "gap")
		g.gate.reopen()
		g.expect(t, "gap")

		again := openBroker(t, g.js.Conn().ConnectedUrl(), gapConfig(), nil)
		sub, err := again.Subscribe(t.Context(), "gap.x", func(context.Context, broker.Delivery) error { return nil }, broker.SubscriptionID("keeper"))
		if err != nil {
			t.Fatalf("subscribing again under the id of a consumer made again: %v", err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
		if names := consumerNames(t, g.js); len(names) != 1 || names[0] != g.consumer {
			t.Errorf("consumers %v; want %s alone", names, g.consumer)
		}
	})

	t.Run("BeforeHandlingAny", func(t *testing.T) {
		g := newGapRig(t)
		g.publish(t, "stored-before-subscribing") // never this subscription's
		g.subscribe(t, func(context.Context, string) error { return nil })
		g.cutAndDelete(t)
		g.publish(t, "gap-0", "gap-1", "gap-2")
		g.gate.reopen()
		g.expect(t, "gap-0", "gap-1", "gap-2")
		g.expectNoMore(t)
	})
}

// TestJetStreamGroupConsumerMadeAgainLosesNothing deletes a queue group's
// shared consumer while its member's connection is away and publishes while
// no consumer exists. Once back, the member makes the consumer again above the
// group's ack floor as it last saw it: every message stored in the gap
// arrives; messages the group handled after that look may come again.
func TestJetStreamGroupConsumerMadeAgainLosesNothing(t *testing.T) {
	for _, tt := range []struct {
		name  string
		look  bool     // the member looks at the floor after handling "before"
		again []string // what may come twice
	}{
		{"FloorSeenAtCreation", false, []string{"before-0", "before-1", "before-2"}},
		{"FloorSeenAfterHandling", true, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := newGapRig(t)
			sub := g.subscribe(t, func(context.Context, string) error { return nil }, broker.Queue("workers"))
			g.publish(t, "before-0", "before-1", "before-2")
			g.expect(t, "before-0", "before-1", "before-2")
			if tt.look {
				// The server takes acks in the background: the member's look
				// sees only the floor the server has reached.
				waitUntil(t, "the server to have taken the acks of before-0..2", func() bool {
					c, err := g.js.Consumer(t.Context(), defaultStream, g.consumer)
					return err == nil && c.CachedInfo().AckFloor.Stream >= 3
				})
				sub.group.checked.Store(0) // look at the next message handled
				g.publish(t, "before-3")
				g.expect(t, "before-3")
				waitUntil(t, "the member to see the group's floor past before-2", func() bool { return sub.group.seq.Load() >= 3 })
			}
			g.cutAndDelete(t)
			g.publish(t, "gap-0", "gap-1", "gap-2", "gap-3")
			g.gate.reopen()
			g.expectAllowing(t, append(tt.again, "before-3"), "gap-0", "gap-1", "gap-2", "gap-3")
			names := consumerNames(t, g.js)
			if len(names) != 1 || names[0] != g.consumer {
				t.Fatalf("consumers %v; want %s made again", names, g.consumer)
			}
			c, err := g.js.Consumer(t.Context(), defaultStream, g.consumer)
			if err != nil {
				t.Fatal(err)
			}
			lowest := uint64(1)
			if tt.look {
				lowest = 4
			}
			if cfg := c.CachedInfo().Config; cfg.DeliverPolicy != jetstream.DeliverByStartSequencePolicy || cfg.OptStartSeq < lowest {
				t.Errorf("consumer made again to deliver from %v at %d; want by start sequence, from %d on", cfg.DeliverPolicy, cfg.OptStartSeq, lowest)
			}
		})
	}
}

// gapRig is a JetStream broker reaching its server through a gate, one plain
// subscription on gap.x that records what it handled, and a client of its own
// straight to the server.
type gapRig struct {
	gate     *tcpGate
	b        *natsBroker
	js       jetstream.JetStream
	consumer string
	got      chan string
	reported chan error // what the broker's error hook hears
}

// newGapRig starts a server and a broker behind a gate; the ack wait is long,
// so the server redelivers nothing by itself while a test runs.
func newGapRig(t *testing.T) *gapRig {
	s := startServer(t, t.TempDir(), server.RANDOM_PORT)
	g := &gapRig{gate: openGate(t, s.Addr().String()), js: jetStreamClient(t, s.ClientURL()), got: make(chan string, 256), reported: make(chan error, 16)}
	g.b = openBroker(t, g.gate.url(), gapConfig(), func(_ string, err error) {
		select {
		case g.reported <- err:
		default:
		}
	})
	return g
}

// gapConfig is the broker config of a gapRig.
func gapConfig() map[string]any {
	return map[string]any{
		"jetstream": map[string]any{"enabled": true, "subjects": []string{"gap.>"}, "ack_wait_ms": 30000},
	}
}

// subscribe subscribes to gap.x: handle decides each delivery (nil acks), and
// what it acks is recorded.
func (g *gapRig) subscribe(t *testing.T, handle func(ctx context.Context, body string) error, opts ...broker.SubscribeOption) *subscription {
	t.Helper()
	sub, err := g.b.Subscribe(t.Context(), "gap.x", func(ctx context.Context, d broker.Delivery) error {
		body := string(d.Message().Body)
		if err := handle(ctx, body); err != nil {
			return err
		}
		select {
		case g.got <- body:
		default:
			t.Errorf("handled %q with the record full", body)
		}
		return nil
	}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	g.consumer = onlyConsumer(t, g.js)
	return sub.(*subscription)
}

// publish stores bodies on gap.x, straight to the server.
func (g *gapRig) publish(t *testing.T, bodies ...string) {
	t.Helper()
	for _, body := range bodies {
		if _, err := g.js.Publish(t.Context(), "gap.x", []byte(body)); err != nil {
			t.Fatalf("publish %s: %v", body, err)
		}
	}
}

// cutAndDelete takes the subscriber's connection away and deletes its
// consumer on the server, as InactiveThreshold or an operator would.
func (g *gapRig) cutAndDelete(t *testing.T) {
	t.Helper()
	g.gate.shut()
	g.gate.cut()
	if err := g.js.DeleteConsumer(t.Context(), defaultStream, g.consumer); err != nil {
		t.Fatal(err)
	}
}

// expect waits until the subscription handled each of bodies, failing on
// anything else it handles meanwhile and after resumeWait.
func (g *gapRig) expect(t *testing.T, bodies ...string) {
	t.Helper()
	g.expectAllowing(t, nil, bodies...)
}

// expectAllowing is expect, with again the bodies that may be handled a
// second time meanwhile.
func (g *gapRig) expectAllowing(t *testing.T, again []string, bodies ...string) {
	t.Helper()
	want := map[string]bool{}
	for _, body := range bodies {
		want[body] = true
	}
	deadline := time.After(resumeWait)
	for len(want) > 0 {
		select {
		case body := <-g.got:
			if !want[body] && !slices.Contains(again, body) {
				t.Errorf("handled %q; want only %v (and maybe again %v)", body, bodies, again)
			}
			delete(want, body)
		case <-deadline:
			t.Fatalf("%d messages never arrived: %v (consumers: %v)", len(want), slices.Sorted(maps.Keys(want)), consumerNames(t, g.js))
		}
	}
}

// expectNoMore publishes one last message and, once it is handled and the
// consumer has nothing left to deliver or to hear settled, fails on anything
// else handled: a message handled before, coming again.
func (g *gapRig) expectNoMore(t *testing.T) {
	t.Helper()
	g.publish(t, "last")
	g.expect(t, "last")
	waitUntil(t, "the consumer to have delivered and heard settled everything", func() bool {
		c, err := g.js.Consumer(t.Context(), defaultStream, g.consumer)
		if err != nil {
			return false
		}
		info := c.CachedInfo()
		return info.NumPending == 0 && info.NumAckPending == 0
	})
	var again []string
	for len(g.got) > 0 {
		again = append(again, <-g.got)
	}
	if len(again) > 0 {
		t.Errorf("handled again: %v", again)
	}
	if names := consumerNames(t, g.js); len(names) != 1 || names[0] != g.consumer {
		t.Errorf("consumers %v; want %s made again", names, g.consumer)
	}
}

// TestDetachKeepsAnIdentifiedConsumer detaches a plain subscription, as the
// plugin does when the host's Subscribe stream breaks: with a subscription id,
// its consumer stays, and subscribing again under the id delivers what was
// published in between; without one, nothing could resume it, and it goes.
func TestDetachKeepsAnIdentifiedConsumer(t *testing.T) {
	noop := func(context.Context, string) error { return nil }
	t.Run("WithID", func(t *testing.T) {
		g := newGapRig(t)
		sub := g.subscribe(t, noop, broker.SubscriptionID("keeper"))
		g.publish(t, "before")
		g.expect(t, "before")
		if err := sub.Detach(); err != nil {
			t.Fatal(err)
		}
		g.publish(t, "while-detached")
		if names := consumerNames(t, g.js); len(names) != 1 || names[0] != g.consumer {
			t.Fatalf("consumers after Detach %v; want %s kept", names, g.consumer)
		}
		g.subscribe(t, noop, broker.SubscriptionID("keeper"))
		g.expect(t, "while-detached")
		g.expectNoMore(t)
	})
	t.Run("WithoutID", func(t *testing.T) {
		g := newGapRig(t)
		sub := g.subscribe(t, noop)
		if err := sub.Detach(); err != nil {
			t.Fatal(err)
		}
		if names := consumerNames(t, g.js); len(names) != 0 {
			t.Fatalf("consumers after Detach %v; want none", names)
		}
	})
}

// TestJetStreamAttemptsCountAcrossAConsumerMadeAgain nacks a message twice,
// then has its consumer deleted and made again, which numbers deliveries from
// 1 again: the subscription still counts the next delivery as attempt 3, and
// with MaxAttempts(3) drops and reports it there instead of allowing three more.
func TestJetStreamAttemptsCountAcrossAConsumerMadeAgain(t *testing.T) {
	g := newGapRig(t)
	attempts := make(chan int, 16)
	holding := make(chan struct{}, 1)
	release := make(chan struct{})
	sub, err := g.b.Subscribe(t.Context(), "gap.x", func(ctx context.Context, d broker.Delivery) error {
		if string(d.Message().Body) != "poison" {
			g.got <- string(d.Message().Body)
			return nil
		}
		attempts <- d.Attempt()
		if d.Attempt() == 2 {
			holding <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return errors.New("poison")
	}, broker.MaxAttempts(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	g.consumer = onlyConsumer(t, g.js)

	g.publish(t, "poison")
	for want := 1; want <= 2; want++ {
		if got := receive(t, attempts, fmt.Sprintf("attempt %d", want)); got != want {
			t.Fatalf("attempt %d came as %d", want, got)
		}
	}
	receive(t, holding, "attempt 2 held until the connection is away")
	g.cutAndDelete(t)
	close(release) // the nack cannot reach the server
	g.gate.reopen()
	if got := receive(t, attempts, "the delivery by the consumer made again"); got != 3 {
		t.Fatalf("the consumer made again delivered attempt %d, want 3", got)
	}
	if err := receive(t, g.reported, "the report of the dropped message"); !errors.Is(err, broker.ErrMaxAttempts) {
		t.Fatalf("reported %v, want broker.ErrMaxAttempts", err)
	}
	g.expectNoMore(t)
	if len(attempts) > 0 {
		t.Fatalf("the message came again after its last attempt: attempt %d", <-attempts)
	}
}
