package plugin_test

import (
	"context"
	"encoding/json"
	stderrors "errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/microhost/micro/sdk/broker"
	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/plugin"
	pluginv1 "github.com/microhost/micro/sdk/plugin/proto/micro/plugin/v1"
)

// newBrokerAdapter serves b over gRPC and returns the host-side adapter to it,
// closed at cleanup before the server stops.
func newBrokerAdapter(t *testing.T, b broker.Broker) (broker.Broker, *adapterServer) {
	t.Helper()
	s := startAdapterServer(t, nil, b)
	c := plugin.NewBrokerClient("test-broker", plugin.StaticConn(s.cc))
	t.Cleanup(func() { _ = c.Close() })
	return c, s
}

// got is what a handler saw of one delivery.
type got struct {
	topic   string
	body    string
	attempt int
	header  map[string]string
	md      metadata.MD
}

// collect subscribes a handler that records every delivery and acks it.
func collect(t *testing.T, b broker.Broker, topic string, opts ...broker.SubscribeOption) (<-chan got, broker.Subscription) {
	t.Helper()
	ch := make(chan got, 256)
	sub, err := b.Subscribe(testCtx(t), topic, func(ctx context.Context, d broker.Delivery) error {
		md, _ := metadata.FromIncomingContext(ctx)
		ch <- got{topic: d.Topic(), body: string(d.Message().Body), attempt: d.Attempt(), header: d.Message().Header, md: md}
		return nil
	}, opts...)
	if err != nil {
		t.Fatalf("Subscribe %q: %v", topic, err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return ch, sub
}

// publish publishes body to topic, failing the test on error.
func publish(t *testing.T, ctx context.Context, b broker.Broker, topic, body string) {
	t.Helper()
	if err := b.Publish(ctx, topic, &broker.Message{Body: []byte(body)}); err != nil {
		t.Fatalf("Publish %q %q: %v", topic, body, err)
	}
}

// expect receives len(want) deliveries from ch and checks their topic:body.
func expect(t *testing.T, ch <-chan got, who string, want ...string) {
	t.Helper()
	for i, w := range want {
		g := receive(t, ch, fmt.Sprintf("%s delivery %d (%s)", who, i, w))
		if s := g.topic + ":" + g.body; s != w {
			t.Fatalf("%s delivery %d = %s, want %s", who, i, s, w)
		}
	}
}

func TestBrokerAdapterWildcards(t *testing.T) {
	ctx := testCtx(t)
	b, _ := newBrokerAdapter(t, newMemoryBroker(t))
	if b.Name() != "test-broker" {
		t.Fatalf("Name() = %q, want the name the host gave", b.Name())
	}
	one, _ := collect(t, b, "orders.*")
	rest, _ := collect(t, b, "orders.>")
	exact, _ := collect(t, b, "orders.eu.created")
	other, _ := collect(t, b, "payments.*")

	publish(t, ctx, b, "orders.eu.created", "1")
	publish(t, ctx, b, "orders.us", "2")
	publish(t, ctx, b, "orders.eu.created", "3")
	publish(t, ctx, b, "orders.end", "4")
	publish(t, ctx, b, "payments.end", "5")

	// Each subscriber's last expected message comes after any it should not get.
	expect(t, one, "orders.*", "orders.us:2", "orders.end:4")
	expect(t, rest, "orders.>", "orders.eu.created:1", "orders.us:2", "orders.eu.created:3", "orders.end:4")
	expect(t, exact, "orders.eu.created", "orders.eu.created:1", "orders.eu.created:3")
	expect(t, other, "payments.*", "payments.end:5")
}

func TestBrokerAdapterQueueGroup(t *testing.T) {
	ctx := testCtx(t)
	b, _ := newBrokerAdapter(t, newMemoryBroker(t))
	w1, s1 := collect(t, b, "jobs.*", broker.Queue("workers"))
	w2, _ := collect(t, b, "jobs.*", broker.Queue("workers"))
	all, _ := collect(t, b, "jobs.*")
	if s1.Topic() != "jobs.*" || s1.Queue() != "workers" {
		t.Fatalf("subscription Topic/Queue = %q/%q", s1.Topic(), s1.Queue())
	}
	const n = 20
	for i := range n {
		publish(t, ctx, b, "jobs.run", fmt.Sprint(i))
	}
	for i := range n {
		if g := receive(t, all, "plain subscriber"); g.body != fmt.Sprint(i) {
			t.Fatalf("plain subscriber got %q, want %d", g.body, i)
		}
	}
	seen := map[string]int{}
	perWorker := [2]int{}
	for range n {
		select {
		case g := <-w1:
			seen[g.body]++
			perWorker[0]++
		case g := <-w2:
			seen[g.body]++
			perWorker[1]++
		case <-ctx.Done():
			t.Fatalf("queue group got %d of %d messages", len(seen), n)
		}
	}
	if len(seen) != n || perWorker[0] == 0 || perWorker[1] == 0 {
		t.Fatalf("queue group: seen %v, per worker %v; want each message once, spread over both", seen, perWorker)
	}
}

func TestBrokerAdapterAckNackRedelivery(t *testing.T) {
	ctx := testCtx(t)
	b, _ := newBrokerAdapter(t, newMemoryBroker(t))

	type step struct {
		body    string
		attempt int
	}
	t.Run("explicit", func(t *testing.T) {
		steps := make(chan step, 16)
		settleErrs := make(chan error, 16)
		sub, err := b.Subscribe(ctx, "explicit", func(_ context.Context, d broker.Delivery) error {
			steps <- step{string(d.Message().Body), d.Attempt()}
			if string(d.Message().Body) == "nack" && d.Attempt() == 1 {
				_ = d.Nack()
				settleErrs <- d.Ack() // too late: it was nacked
				return nil
			}
			settleErrs <- d.Ack()
			settleErrs <- d.Ack() // acking twice is fine
			return stderrors.New("ignored: the explicit Ack wins")
		}, broker.AutoAck(false))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
		publish(t, ctx, b, "explicit", "nack")
		publish(t, ctx, b, "explicit", "fresh")
		publish(t, ctx, b, "explicit", "end")
		// A redelivery goes ahead of fresh messages, and an acked one never comes back.
		for _, want := range []step{{"nack", 1}, {"nack", 2}, {"fresh", 1}, {"end", 1}} {
			if s := receive(t, steps, fmt.Sprint(want)); s != want {
				t.Fatalf("delivery %v, want %v", s, want)
			}
		}
		if err := receive(t, settleErrs, "Ack after Nack"); !stderrors.Is(err, broker.ErrAlreadySettled) {
			t.Fatalf("Ack after Nack = %v, want ErrAlreadySettled", err)
		}
		for range 6 {
			if err := receive(t, settleErrs, "Ack"); err != nil {
				t.Fatalf("Ack = %v", err)
			}
		}
	})

	t.Run("auto", func(t *testing.T) {
		ch := make(chan got, 16)
		sub, err := b.Subscribe(ctx, "auto", func(_ context.Context, d broker.Delivery) error {
			ch <- got{body: string(d.Message().Body), attempt: d.Attempt(), header: d.Message().Header}
			if d.Attempt() == 1 {
				return stderrors.New("try again")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
		if err := b.Publish(ctx, "auto", &broker.Message{Header: map[string]string{"X-Kind": "retry"}, Body: []byte("m")}); err != nil {
			t.Fatal(err)
		}
		for attempt := 1; attempt <= 2; attempt++ {
			g := receive(t, ch, fmt.Sprintf("attempt %d", attempt))
			if g.attempt != attempt || g.body != "m" || g.header["X-Kind"] != "retry" {
				t.Fatalf("delivery %+v, want attempt %d of m with its header", g, attempt)
			}
		}
	})

	t.Run("unsettled", func(t *testing.T) {
		ch := make(chan step, 16)
		late := make(chan broker.Delivery, 1)
		sub, err := b.Subscribe(ctx, "unsettled", func(_ context.Context, d broker.Delivery) error {
			ch <- step{string(d.Message().Body), d.Attempt()}
			if d.Attempt() == 1 {
				late <- d
				return nil // neither Ack nor Nack: counts as a Nack
			}
			return d.Ack()
		}, broker.AutoAck(false))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
		publish(t, ctx, b, "unsettled", "u")
		if s := receive(t, ch, "attempt 1"); s != (step{"u", 1}) {
			t.Fatalf("delivery %v", s)
		}
		if s := receive(t, ch, "attempt 2"); s != (step{"u", 2}) {
			t.Fatalf("delivery %v, want a redelivery", s)
		}
		if err := receive(t, late, "the expired delivery").Ack(); !stderrors.Is(err, broker.ErrAlreadySettled) {
			t.Fatalf("Ack after the handler returned = %v, want ErrAlreadySettled", err)
		}
	})
}

func TestBrokerAdapterHeaderAndMetadata(t *testing.T) {
	ctx := testCtx(t)
	b, _ := newBrokerAdapter(t, newMemoryBroker(t))
	ch, _ := collect(t, b, "meta.>")
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	out := metadata.NewOutgoingContext(ctx, metadata.MD{metadata.TraceParent: tp, metadata.TraceState: "vendor=1", metadata.RequestID: "not-a-trace-header"})

	header := map[string]string{"x-custom": "v", "Micro-Request-Id": "r1"}
	msg := &broker.Message{Header: header, Body: []byte("hello")}
	if err := b.Publish(out, "meta.one", msg); err != nil {
		t.Fatal(err)
	}
	if len(msg.Header) != 2 {
		t.Fatalf("Publish changed the caller's header: %v", msg.Header)
	}
	g := receive(t, ch, "meta.one")
	wantHeader := map[string]string{"x-custom": "v", "Micro-Request-Id": "r1", metadata.TraceParent: tp, metadata.TraceState: "vendor=1"}
	if g.body != "hello" || !reflect.DeepEqual(g.header, wantHeader) {
		t.Fatalf("delivery header %v body %q, want %v and hello: the header as published plus only the trace context", g.header, g.body, wantHeader)
	}
	want := metadata.MD{"X-Custom": "v", metadata.RequestID: "r1", metadata.TraceParent: tp, metadata.TraceState: "vendor=1"}
	if !reflect.DeepEqual(g.md, want) {
		t.Fatalf("incoming metadata %v, want %v", g.md, want)
	}

	// A header with its own trace context keeps it.
	own := "00-11111111111111111111111111111111-2222222222222222-01"
	if err := b.Publish(out, "meta.two", &broker.Message{Header: map[string]string{"traceparent": own}}); err != nil {
		t.Fatal(err)
	}
	g = receive(t, ch, "meta.two")
	if g.header["traceparent"] != own || g.header[metadata.TraceParent] != "" || g.header[metadata.TraceState] != "" {
		t.Fatalf("header %v: the message's own traceparent must win", g.header)
	}
}

// failingBroker fails every Publish and Subscribe with err.
type failingBroker struct{ err error }

func (f failingBroker) Name() string { return "failing" }
func (f failingBroker) Publish(context.Context, string, *broker.Message) error {
	return f.err
}
func (f failingBroker) Subscribe(context.Context, string, broker.Handler, ...broker.SubscribeOption) (broker.Subscription, error) {
	return nil, f.err
}
func (f failingBroker) Close() error { return nil }

func TestBrokerAdapterErrorEnvelopeCrosses(t *testing.T) {
	ctx := testCtx(t)
	conflict := errors.Conflict("fake-broker", "message %q was already published", "m-1")
	b, _ := newBrokerAdapter(t, failingBroker{err: fmt.Errorf("fake: %w", conflict)})

	err := b.Publish(ctx, "orders.created", &broker.Message{Body: []byte("x")})
	if env := envelopeOf(t, err); !reflect.DeepEqual(env, conflict) {
		t.Fatalf("Publish error envelope %+v, want %+v intact", env, conflict)
	}
	if !stderrors.Is(err, errors.Conflict("", "")) || errors.Code(err) != 409 {
		t.Fatalf("Publish error %v does not match a 409", err)
	}
	_, err = b.Subscribe(ctx, "orders.*", func(context.Context, broker.Delivery) error { return nil })
	if env := envelopeOf(t, err); !reflect.DeepEqual(env, conflict) {
		t.Fatalf("Subscribe error envelope %+v, want %+v intact", env, conflict)
	}
}

func TestBrokerAdapterSentinels(t *testing.T) {
	ctx := testCtx(t)
	b, _ := newBrokerAdapter(t, newMemoryBroker(t))
	handler := func(context.Context, broker.Delivery) error { return nil }

	if err := b.Publish(ctx, "orders..created", &broker.Message{}); !stderrors.Is(err, broker.ErrInvalidTopic) {
		t.Errorf("Publish to a bad topic = %v, want ErrInvalidTopic", err)
	}
	if _, err := b.Subscribe(ctx, "orders.>.x", handler); !stderrors.Is(err, broker.ErrInvalidTopic) {
		t.Errorf("Subscribe to a bad pattern = %v, want ErrInvalidTopic", err)
	}
	if _, err := b.Subscribe(ctx, "orders.*", handler, broker.Buffer(-1)); err == nil {
		t.Errorf("Subscribe with a negative Buffer succeeded")
	}
	if _, err := b.Subscribe(ctx, "orders.*", nil); err == nil {
		t.Errorf("Subscribe with a nil handler succeeded")
	}
	if err := b.Publish(ctx, "orders.created", nil); err == nil {
		t.Errorf("Publish of a nil message succeeded")
	}

	// The plugin's own ErrInvalidTopic comes back as one.
	strict, _ := newBrokerAdapter(t, failingBroker{err: fmt.Errorf("strict: %w: no capitals", broker.ErrInvalidTopic)})
	err := strict.Publish(ctx, "Orders", &broker.Message{})
	if !stderrors.Is(err, broker.ErrInvalidTopic) || errors.Code(err) != 400 {
		t.Errorf("plugin-side invalid topic = %v (code %d), want ErrInvalidTopic with 400", err, errors.Code(err))
	}

	// A full subscriber: the plugin's ErrSlowConsumer comes back as one.
	started, release := make(chan struct{}, 1), make(chan struct{})
	t.Cleanup(func() { close(release) })
	_, err = b.Subscribe(ctx, "slow", func(ctx context.Context, _ broker.Delivery) error {
		started <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}, broker.Buffer(1))
	if err != nil {
		t.Fatal(err)
	}
	publish(t, ctx, b, "slow", "1")
	receive(t, started, "the slow handler to start")
	publish(t, ctx, b, "slow", "2") // fills the buffer of one
	// Without a deadline the memory broker fails at once instead of waiting for room.
	err = b.Publish(context.WithoutCancel(ctx), "slow", &broker.Message{Body: []byte("3")})
	if !stderrors.Is(err, broker.ErrSlowConsumer) || errors.Code(err) != 429 {
		t.Fatalf("Publish to a full subscriber = %v, want ErrSlowConsumer with 429", err)
	}
}

func TestBrokerAdapterConcurrency(t *testing.T) {
	ctx := testCtx(t)
	b, _ := newBrokerAdapter(t, newMemoryBroker(t))
	started := make(chan string, 2)
	both := make(chan struct{})
	_, err := b.Subscribe(ctx, "work", func(ctx context.Context, d broker.Delivery) error {
		started <- string(d.Message().Body)
		select { // only returns once both handlers ran at the same time
		case <-both:
		case <-ctx.Done():
		}
		return nil
	}, broker.Concurrency(2))
	if err != nil {
		t.Fatal(err)
	}
	publish(t, ctx, b, "work", "a")
	publish(t, ctx, b, "work", "b")
	got := []string{receive(t, started, "first handler"), receive(t, started, "second handler, concurrently")}
	close(both)
	slices.Sort(got)
	if !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("handlers saw %v", got)
	}
}

func TestBrokerAdapterUnsubscribe(t *testing.T) {
	ctx := testCtx(t)
	b, _ := newBrokerAdapter(t, newMemoryBroker(t))
	gone, a := collect(t, b, "news")
	kept, _ := collect(t, b, "news")
	if err := a.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if err := a.Unsubscribe(); err != nil {
		t.Fatalf("second Unsubscribe: %v", err)
	}
	publish(t, ctx, b, "news", "after")
	expect(t, kept, "kept", "news:after")
	// Unsubscribe returned only once the plugin had dropped the subscription.
	select {
	case g := <-gone:
		t.Fatalf("unsubscribed handler got %+v", g)
	default:
	}
}

func TestBrokerAdapterUnsubscribeNacksInFlight(t *testing.T) {
	ctx := testCtx(t)
	b, _ := newBrokerAdapter(t, newMemoryBroker(t))
	started := make(chan int, 1)
	first, err := b.Subscribe(ctx, "tasks", func(ctx context.Context, d broker.Delivery) error {
		started <- d.Attempt()
		<-ctx.Done() // Unsubscribe ends the handler's context
		return ctx.Err()
	}, broker.Queue("g"))
	if err != nil {
		t.Fatal(err)
	}
	publish(t, ctx, b, "tasks", "t1")
	if a := receive(t, started, "the first member's handler"); a != 1 {
		t.Fatalf("attempt %d", a)
	}
	second, _ := collect(t, b, "tasks", broker.Queue("g"))
	if err := first.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	// The first member's handler failed, which nacked the message; the group's
	// other member gets it again.
	if g := receive(t, second, "the redelivery to the other member"); g.body != "t1" || g.attempt != 2 {
		t.Fatalf("redelivery %+v, want t1 attempt 2", g)
	}
}

func TestBrokerAdapterPublishStream(t *testing.T) {
	ctx := testCtx(t)
	mem := newMemoryBroker(t)
	b, s := newBrokerAdapter(t, mem)
	ch, _ := collect(t, b, "stream.>")

	stream, err := pluginv1.NewBrokerClient(s.cc).PublishStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	var batch []*pluginv1.PublishRequest
	for i := range n {
		topic := "stream.a"
		if i%2 == 1 {
			topic = "stream.b"
		}
		batch = append(batch, &pluginv1.PublishRequest{Id: uint64(i + 1), Topic: topic, Message: &pluginv1.Message{Body: []byte(fmt.Sprint(i))}})
		if len(batch) == 7 { // batches of several sizes
			if err := stream.Send(&pluginv1.PublishBatch{Requests: batch}); err != nil {
				t.Fatal(err)
			}
			batch = nil
		}
	}
	batch = append(batch, &pluginv1.PublishRequest{Id: 1000, Topic: "bad..topic"})
	if err := stream.Send(&pluginv1.PublishBatch{Requests: batch}); err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	acks := map[uint64]string{}
	for {
		got, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Recv after %d acks: %v", len(acks), err)
		}
		for _, id := range got.GetOk() {
			acks[id] = ""
		}
		for _, ack := range got.GetAcks() {
			acks[ack.GetId()] = ack.GetError()
		}
	}
	if len(acks) != n+1 {
		t.Fatalf("%d acks, want %d", len(acks), n+1)
	}
	for id := uint64(1); id <= n; id++ {
		if e, ok := acks[id]; !ok || e != "" {
			t.Fatalf("ack %d = %q, %v; want a success", id, e, ok)
		}
	}
	var env errors.Error
	if err := json.Unmarshal([]byte(acks[1000]), &env); err != nil || env.Code != 400 || env.ID != "memory" {
		t.Fatalf("ack for the bad topic = %q (%v), want a 400 envelope from memory", acks[1000], err)
	}
	// Messages to one topic keep the order they were sent in.
	next := map[string]int{"stream.a": 0, "stream.b": 1}
	for range n {
		g := receive(t, ch, "a streamed message")
		if g.body != fmt.Sprint(next[g.topic]) {
			t.Fatalf("%s got %s, want %d: per-topic order lost", g.topic, g.body, next[g.topic])
		}
		next[g.topic] += 2
	}
}

func TestBrokerAdapterSubscribeProtocol(t *testing.T) {
	ctx := testCtx(t)
	_, s := newBrokerAdapter(t, newMemoryBroker(t))
	client := pluginv1.NewBrokerClient(s.cc)

	settle := &pluginv1.SubscribeClientMessage{Msg: &pluginv1.SubscribeClientMessage_Settle{Settle: &pluginv1.Settle{DeliveryId: 1, Ack: true}}}
	subscribe := &pluginv1.SubscribeClientMessage{Msg: &pluginv1.SubscribeClientMessage_Subscribe{Subscribe: &pluginv1.SubscribeRequest{Topic: "x"}}}
	for name, msgs := range map[string][]*pluginv1.SubscribeClientMessage{
		"settle first":    {settle},
		"subscribe twice": {subscribe, subscribe},
		"empty first":     {{}},
	} {
		t.Run(name, func(t *testing.T) {
			stream, err := client.Subscribe(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				if err := stream.Send(m); err != nil {
					t.Fatal(err)
				}
			}
			_, err = stream.Recv()
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("Recv = %v, want InvalidArgument", err)
			}
			if errors.Code(plugin.FromStatus("test", err)) != 400 {
				t.Fatalf("FromStatus(%v) is not a 400 envelope", err)
			}
		})
	}
}

func TestBrokerAdapterCloseReleasesEverything(t *testing.T) {
	ctx := testCtx(t)
	mem := newMemoryBroker(t)
	s := startAdapterServer(t, nil, mem)
	b := plugin.NewBrokerClient("test-broker", plugin.StaticConn(s.cc))
	publish(t, ctx, b, "warm.up", "x") // the connection is up: its goroutines are part of the baseline
	baseline := runtime.NumGoroutine()

	var wg sync.WaitGroup // counts deliveries to the close.> subscribers
	blocked := make(chan struct{}, 1)
	_, err := b.Subscribe(ctx, "close.blocked", func(ctx context.Context, _ broker.Delivery) error {
		blocked <- struct{}{}
		<-ctx.Done() // Close ends the handler's context and waits for it
		return ctx.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		_, err := b.Subscribe(ctx, "close.>", func(context.Context, broker.Delivery) error {
			wg.Done()
			return nil
		}, broker.Concurrency(i+1), broker.Queue(fmt.Sprint("q", i)))
		if err != nil {
			t.Fatal(err)
		}
	}
	wg.Add(3)
	publish(t, ctx, b, "close.blocked", "x")
	wg.Wait()
	// Without a deadline, the publish goes over the shared stream, which Close must end too.
	wg.Add(3)
	publish(t, context.WithoutCancel(ctx), b, "close.stream", "y")
	wg.Wait()
	receive(t, blocked, "the blocked handler")

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	settleGoroutines(t, baseline)
	if err := b.Publish(ctx, "close.x", &broker.Message{}); !stderrors.Is(err, broker.ErrClosed) {
		t.Fatalf("Publish after Close = %v, want ErrClosed", err)
	}
	if _, err := b.Subscribe(ctx, "close.x", func(context.Context, broker.Delivery) error { return nil }); !stderrors.Is(err, broker.ErrClosed) {
		t.Fatalf("Subscribe after Close = %v, want ErrClosed", err)
	}
}

// blockingBroker's Publish waits until its context ends.
type blockingBroker struct{ failingBroker }

func (blockingBroker) Publish(ctx context.Context, _ string, _ *broker.Message) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestBrokerAdapterPublishStreamPath(t *testing.T) {
	ctx := testCtx(t)
	noDeadline := context.WithoutCancel(ctx) // publishes share the PublishStream
	b, _ := newBrokerAdapter(t, newMemoryBroker(t))

	t.Run("delivery and trace context", func(t *testing.T) {
		ch, _ := collect(t, b, "path.one")
		const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		out := metadata.NewOutgoingContext(noDeadline, metadata.MD{metadata.TraceParent: tp})
		if err := b.Publish(out, "path.one", &broker.Message{Header: map[string]string{"X-A": "1"}, Body: []byte("hi")}); err != nil {
			t.Fatal(err)
		}
		g := receive(t, ch, "path.one")
		if g.body != "hi" || g.header["X-A"] != "1" || g.md[metadata.TraceParent] != tp {
			t.Fatalf("delivery %+v", g)
		}
	})

	t.Run("concurrent publishers keep their own order", func(t *testing.T) {
		ch, _ := collect(t, b, "par.*")
		const publishers, each = 8, 25
		publishConcurrently(t, noDeadline, b, "par.", publishers, each)
		next := map[string]int{}
		for range publishers * each {
			g := receive(t, ch, "a concurrent publish")
			if g.body != fmt.Sprint(next[g.topic]) {
				t.Fatalf("%s got %s, want %d", g.topic, g.body, next[g.topic])
			}
			next[g.topic]++
		}
	})

	t.Run("errors cross", func(t *testing.T) {
		conflict := errors.Conflict("fake-broker", "message %q was already published", "m-1")
		fb, _ := newBrokerAdapter(t, failingBroker{err: conflict})
		err := fb.Publish(noDeadline, "x", &broker.Message{})
		if env := envelopeOf(t, err); !reflect.DeepEqual(env, conflict) {
			t.Fatalf("envelope %+v, want %+v intact", env, conflict)
		}
		strict, _ := newBrokerAdapter(t, failingBroker{err: fmt.Errorf("%w: strict", broker.ErrInvalidTopic)})
		if err := strict.Publish(noDeadline, "x", &broker.Message{}); !stderrors.Is(err, broker.ErrInvalidTopic) || errors.Code(err) != 400 {
			t.Fatalf("plugin-side invalid topic over the stream = %v", err)
		}
	})

	t.Run("cancel stops waiting", func(t *testing.T) {
		bb, _ := newBrokerAdapter(t, blockingBroker{})
		cctx, cancel := context.WithCancel(noDeadline)
		errc := make(chan error, 1)
		go func() { errc <- bb.Publish(cctx, "x", &broker.Message{}) }()
		cancel()
		if err := receive(t, errc, "the cancelled publish"); !stderrors.Is(err, context.Canceled) {
			t.Fatalf("cancelled publish = %v, want context.Canceled", err)
		}
	})

	t.Run("the deadline reaches the plugin", func(t *testing.T) {
		bb, _ := newBrokerAdapter(t, blockingBroker{})
		dctx, cancel := context.WithTimeout(noDeadline, 50*time.Millisecond)
		defer cancel()
		timedOut := func(err error) bool {
			// Whichever side sees the deadline first: the plugin acks a 504, or
			// the host stops waiting.
			return errors.Code(err) == http.StatusGatewayTimeout || stderrors.Is(err, context.DeadlineExceeded)
		}
		if err := bb.Publish(dctx, "x", &broker.Message{}); !timedOut(err) {
			t.Fatalf("publish past its deadline = %v, want a timeout", err)
		}
		// The plugin's Publish ended at the deadline too: the stream is free for
		// the next publish, which must get the same answer, not hang.
		dctx2, cancel2 := context.WithTimeout(noDeadline, 50*time.Millisecond)
		defer cancel2()
		if err := bb.Publish(dctx2, "x", &broker.Message{}); !timedOut(err) {
			t.Fatalf("second publish = %v, want a timeout", err)
		}
	})

	t.Run("a batch publisher gets whole batches in order", func(t *testing.T) {
		rec := &recordingBatchBroker{failingBroker: failingBroker{}}
		bb, _ := newBrokerAdapter(t, rec)
		const publishers, each = 16, 40
		publishConcurrently(t, noDeadline, bb, "batch.", publishers, each)
		if err := bb.Publish(noDeadline, "batch.reject", &broker.Message{}); !stderrors.Is(err, broker.ErrInvalidTopic) {
			t.Fatalf("a message the batch publisher refused = %v, want ErrInvalidTopic back", err)
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if rec.calls == 0 {
			t.Fatal("PublishBatch was never called")
		}
		for p := range publishers {
			got := rec.bodies[fmt.Sprint("batch.", p)]
			if len(got) != each {
				t.Fatalf("topic batch.%d: %d messages, want %d", p, len(got), each)
			}
			for i, body := range got {
				if body != fmt.Sprint(i) {
					t.Fatalf("topic batch.%d out of order: %v", p, got)
				}
			}
		}
		t.Logf("%d messages in %d batches", publishers*each+1, rec.calls)
	})
}

// publishConcurrently has publishers goroutines publish each messages, bodies
// "0", "1", ... in order, to prefix+<publisher>, and fails t on any error.
func publishConcurrently(t *testing.T, ctx context.Context, b broker.Broker, prefix string, publishers, each int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, publishers*each)
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				errs <- b.Publish(ctx, fmt.Sprint(prefix, p), &broker.Message{Body: []byte(fmt.Sprint(i))})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// recordingBatchBroker is a broker.BatchPublisher that records what it is given
// and refuses the topic "batch.reject".
type recordingBatchBroker struct {
	failingBroker
	mu     sync.Mutex
	calls  int
	bodies map[string][]string
}

func (r *recordingBatchBroker) PublishBatch(_ context.Context, batch []broker.Publication) func() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bodies == nil {
		r.bodies = make(map[string][]string)
	}
	r.calls++
	errs := make([]error, len(batch))
	for i, p := range batch {
		if p.Topic == "batch.reject" {
			errs[i] = broker.ErrInvalidTopic
			continue
		}
		r.bodies[p.Topic] = append(r.bodies[p.Topic], string(p.Message.Body))
	}
	return func() []error { return errs }
}

// BenchmarkBrokerAdapterPublish measures a publish across the boundary over
// loopback gRPC, through the shared PublishStream (with and without a
// deadline), against the memory broker called directly.
func BenchmarkBrokerAdapterPublish(b *testing.B) {
	msg := &broker.Message{Header: map[string]string{"Content-Type": "application/json"}, Body: []byte(`{"id":1}`)}
	run := func(b *testing.B, brk broker.Broker, ctx context.Context) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := brk.Publish(ctx, "bench.topic", msg); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	withDeadline, cancel := context.WithTimeout(context.Background(), time.Hour)
	b.Cleanup(cancel)
	b.Run("memory-direct", func(b *testing.B) {
		mem := broker.NewMemory()
		b.Cleanup(func() { _ = mem.Close() })
		run(b, mem, context.Background())
	})
	for _, tc := range []struct {
		name string
		ctx  context.Context
	}{{"plugin-stream", context.Background()}, {"plugin-stream-deadline", withDeadline}} {
		b.Run(tc.name, func(b *testing.B) {
			mem := broker.NewMemory()
			b.Cleanup(func() { _ = mem.Close() })
			s := startAdapterServer(b, nil, mem)
			c := plugin.NewBrokerClient("bench", plugin.StaticConn(s.cc))
			b.Cleanup(func() { _ = c.Close() })
			run(b, c, tc.ctx)
		})
	}
}
