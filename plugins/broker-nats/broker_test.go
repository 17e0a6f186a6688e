package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/microhost/micro/sdk/broker"
	"github.com/microhost/micro/sdk/conformance"
	"github.com/microhost/micro/sdk/metadata"
)

const testTraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// startServer runs an embedded NATS server with JetStream storing in dir, on
// port (server.RANDOM_PORT for any), shut down when the test ends.
func startServer(t testing.TB, dir string, port int) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatal("nats server did not become ready within 10s")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// openBroker configures a broker with config (url added) and closes it when the
// test ends; onError may be nil.
func openBroker(t testing.TB, url string, config map[string]any, onError func(string, error)) *natsBroker {
	t.Helper()
	c := map[string]any{"url": url, "reconnect": map[string]any{"wait_ms": 20}}
	for k, v := range config {
		c[k] = v
	}
	raw, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := validateAgainstSchema(raw); err != nil {
		t.Fatalf("test config breaks the schema: %v", err)
	}
	b := newBroker(onError)
	if err := b.Configure(t.Context(), raw); err != nil {
		t.Fatalf("Configure(%s): %v", raw, err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// jetStreamConfig enables JetStream over subjects.
func jetStreamConfig(subjects ...string) map[string]any {
	return map[string]any{"jetstream": map[string]any{"enabled": true, "subjects": subjects, "ack_wait_ms": 1000}}
}

// validateAgainstSchema checks raw against configSchema as the host does.
func validateAgainstSchema(raw []byte) error {
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(configSchema))
	if err != nil {
		return fmt.Errorf("schema is not JSON: %w", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("micro://broker-nats/config.schema.json", doc); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	sch, err := c.Compile("micro://broker-nats/config.schema.json")
	if err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(string(raw)))
	if err != nil {
		return err
	}
	return sch.Validate(v)
}

// receive waits up to 10s for a value on ch.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// TestConformanceJetStream runs the full broker suite in JetStream mode, one
// embedded server for all subtests.
func TestConformanceJetStream(t *testing.T) {
	s := startServer(t, t.TempDir(), server.RANDOM_PORT)
	conformance.Broker(t, func(t *testing.T) broker.Broker {
		return openBroker(t, s.ClientURL(), jetStreamConfig("conformance.>"), nil)
	})
}

// TestCoreMode covers core NATS, which the suite cannot run whole: it has no
// redelivery, so its AutoAckNack and ManualNack subtests do not apply.
func TestCoreMode(t *testing.T) {
	s := startServer(t, t.TempDir(), server.RANDOM_PORT)

	t.Run("PublishSubscribeWithTraceFromContext", func(t *testing.T) {
		b := openBroker(t, s.ClientURL(), nil, nil)
		type got struct {
			d  broker.Delivery
			md metadata.MD
		}
		ch := make(chan got, 4)
		sub, err := b.Subscribe(t.Context(), "core.trace.*", func(ctx context.Context, d broker.Delivery) error {
			md, _ := metadata.FromIncomingContext(ctx)
			ch <- got{d, md}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
		ctx := metadata.NewOutgoingContext(t.Context(), metadata.MD{metadata.TraceParent: testTraceParent, metadata.Baggage: "k=v"})
		if err := b.Publish(ctx, "core.trace.x", &broker.Message{Header: map[string]string{"Micro-Request-Id": "r1"}, Body: []byte("hi")}); err != nil {
			t.Fatal(err)
		}
		g := receive(t, ch, "the delivery")
		if g.d.Topic() != "core.trace.x" || string(g.d.Message().Body) != "hi" || g.d.Attempt() != 1 {
			t.Errorf("delivery %q %q attempt %d", g.d.Topic(), g.d.Message().Body, g.d.Attempt())
		}
		for k, want := range map[string]string{metadata.TraceParent: testTraceParent, metadata.Baggage: "k=v", metadata.RequestID: "r1"} {
			if v := g.d.Message().Header[k]; v != want {
				t.Errorf("header %s = %q, want %q", k, v, want)
			}
			if v, _ := g.md.Get(k); v != want {
				t.Errorf("incoming metadata %s = %q, want %q", k, v, want)
			}
		}
	})

	t.Run("QueueGroupAndWildcard", func(t *testing.T) {
		b := openBroker(t, s.ClientURL(), nil, nil)
		const n = 20
		ch := make(chan string, 4*n)
		for range 3 {
			sub, err := b.Subscribe(t.Context(), "core.q.>", func(_ context.Context, d broker.Delivery) error {
				ch <- string(d.Message().Body)
				return nil
			}, broker.Queue("workers"), broker.Concurrency(2))
			if err != nil {
				t.Fatal(err)
			}
			if sub.Queue() != "workers" || sub.Topic() != "core.q.>" {
				t.Errorf("Queue() %q Topic() %q", sub.Queue(), sub.Topic())
			}
			t.Cleanup(func() { _ = sub.Unsubscribe() })
		}
		for i := range n {
			if err := b.Publish(t.Context(), "core.q.a."+strconv.Itoa(i), &broker.Message{Body: []byte(strconv.Itoa(i))}); err != nil {
				t.Fatal(err)
			}
		}
		seen := map[string]int{}
		for range n {
			seen[receive(t, ch, "a queue delivery")]++
		}
		select {
		case extra := <-ch:
			t.Errorf("message %s delivered to more than one member", extra)
		case <-time.After(200 * time.Millisecond):
		}
		if len(seen) != n {
			t.Errorf("got %d distinct messages, want %d: %v", len(seen), n, seen)
		}
	})

	t.Run("NackIsAtMostOnce", func(t *testing.T) {
		reported := make(chan error, 4)
		b := openBroker(t, s.ClientURL(), nil, func(_ string, err error) { reported <- err })
		ch := make(chan int, 4)
		sub, err := b.Subscribe(t.Context(), "core.nack", func(_ context.Context, d broker.Delivery) error {
			ch <- d.Attempt()
			return errors.New("fail on purpose")
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
		if err := b.Publish(t.Context(), "core.nack", &broker.Message{Body: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		if a := receive(t, ch, "the delivery"); a != 1 {
			t.Errorf("attempt %d, want 1", a)
		}
		if err := receive(t, reported, "the dropped message's report"); !strings.Contains(err.Error(), "fail on purpose") {
			t.Errorf("report %v does not carry the handler's error", err)
		}
		select {
		case a := <-ch:
			t.Errorf("core NATS redelivered (attempt %d)", a)
		case <-time.After(250 * time.Millisecond):
		}
	})

	t.Run("UnsubscribeAndClose", func(t *testing.T) {
		b := openBroker(t, s.ClientURL(), nil, nil)
		ch := make(chan string, 4)
		sub, err := b.Subscribe(t.Context(), "core.bye", func(_ context.Context, d broker.Delivery) error {
			ch <- string(d.Message().Body)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := sub.Unsubscribe(); err != nil {
			t.Fatal(err)
		}
		if err := b.Publish(t.Context(), "core.bye", &broker.Message{Body: []byte("after")}); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-ch:
			t.Errorf("delivery %q after Unsubscribe", m)
		case <-time.After(250 * time.Millisecond):
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if err := b.Publish(t.Context(), "core.bye", &broker.Message{}); !errors.Is(err, broker.ErrClosed) {
			t.Errorf("Publish after Close = %v, want ErrClosed", err)
		}
		if _, err := b.Subscribe(t.Context(), "core.bye", func(context.Context, broker.Delivery) error { return nil }); !errors.Is(err, broker.ErrClosed) {
			t.Errorf("Subscribe after Close = %v, want ErrClosed", err)
		}
		if err := b.Publish(t.Context(), "core.>", &broker.Message{}); !errors.Is(err, broker.ErrInvalidTopic) {
			t.Errorf("Publish to a wildcard = %v, want ErrInvalidTopic", err)
		}
	})
}

// TestPlainClientInterop checks a message from a plain nats.go client reaches a
// broker subscriber with its headers, in both modes, and that a broker's
// message reaches a plain client with trace context taken from ctx.
func TestPlainClientInterop(t *testing.T) {
	s := startServer(t, t.TempDir(), server.RANDOM_PORT)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)

	for _, mode := range []struct {
		name   string
		config map[string]any
	}{{"Core", nil}, {"JetStream", jetStreamConfig("interop.>")}} {
		t.Run(mode.name+"ClientToBroker", func(t *testing.T) {
			b := openBroker(t, s.ClientURL(), mode.config, nil)
			type got struct {
				header map[string]string
				md     metadata.MD
				body   string
			}
			ch := make(chan got, 4)
			sub, err := b.Subscribe(t.Context(), "interop.in.*", func(ctx context.Context, d broker.Delivery) error {
				md, _ := metadata.FromIncomingContext(ctx)
				ch <- got{d.Message().Header, md, string(d.Message().Body)}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sub.Unsubscribe() })
			m := nats.NewMsg("interop.in." + strings.ToLower(mode.name))
			m.Header.Set("Traceparent", testTraceParent)
			m.Header.Set("Micro-Request-Id", "req-7")
			m.Data = []byte("from a plain client")
			if err := nc.PublishMsg(m); err != nil {
				t.Fatal(err)
			}
			g := receive(t, ch, "the plain client's message")
			if g.body != "from a plain client" {
				t.Errorf("body %q", g.body)
			}
			for k, want := range map[string]string{metadata.TraceParent: testTraceParent, metadata.RequestID: "req-7"} {
				if g.header[k] != want {
					t.Errorf("header %s = %q, want %q (header %v)", k, g.header[k], want, g.header)
				}
				if v, _ := g.md.Get(k); v != want {
					t.Errorf("incoming metadata %s = %q, want %q", k, v, want)
				}
			}
		})
	}

	t.Run("BrokerToClient", func(t *testing.T) {
		b := openBroker(t, s.ClientURL(), nil, nil)
		sub, err := nc.SubscribeSync("interop.out")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		ctx := metadata.AppendOutgoing(t.Context(), metadata.TraceParent, testTraceParent)
		if err := b.Publish(ctx, "interop.out", &broker.Message{Header: map[string]string{"Content-Type": "application/json"}, Body: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if m.Header.Get("Traceparent") != testTraceParent || m.Header.Get("Content-Type") != "application/json" || string(m.Data) != "{}" {
			t.Errorf("plain client got header %v body %q", m.Header, m.Data)
		}
	})
}

// TestJetStreamSurvivesServerRestart shuts the server down while a subscriber
// is midway through a stream of messages and restarts it on the same port and
// store: every message published before the shutdown still arrives.
func TestJetStreamSurvivesServerRestart(t *testing.T) {
	const n = 50
	dir := t.TempDir()
	s1 := startServer(t, dir, server.RANDOM_PORT)
	port := s1.Addr().(*net.TCPAddr).Port
	b := openBroker(t, s1.ClientURL(), jetStreamConfig("restart.>"), nil)

	gate := make(chan struct{}) // handlers past the tenth message wait for it
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
	)
	progress := make(chan int, 4*n)
	sub, err := b.Subscribe(t.Context(), "restart.events", func(ctx context.Context, d broker.Delivery) error {
		mu.Lock()
		count := len(seen)
		mu.Unlock()
		if count >= 10 {
			select {
			case <-gate:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		mu.Lock()
		seen[string(d.Message().Body)] = true
		count = len(seen)
		mu.Unlock()
		progress <- count
		return nil
	}, broker.Buffer(2)) // few messages held client-side: most must come from the restarted server
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	for i := range n {
		if err := b.Publish(t.Context(), "restart.events", &broker.Message{Body: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	for c := 0; c < 10; {
		c = receive(t, progress, "the first ten deliveries")
	}

	s1.Shutdown()
	s1.WaitForShutdown()
	startServer(t, dir, port)
	close(gate)

	deadline := time.After(30 * time.Second)
	for c := 0; c < n; {
		select {
		case c = <-progress:
		case <-deadline:
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("after the restart only %d of %d messages arrived", len(seen), n)
		}
	}
	// Stop before the restarted server's cleanup, registered last, shuts it down.
	if err := sub.Unsubscribe(); err != nil {
		t.Error(err)
	}
	if err := b.Close(); err != nil {
		t.Error(err)
	}
}

// TestConfigRejected checks bad config blocks fail the schema and parseConfig
// with an error that names the problem, and that good ones pass both.
func TestConfigRejected(t *testing.T) {
	bad := []struct{ name, config, want string }{
		{"NoURL", `{}`, "url"},
		{"UnknownField", `{"url":"nats://x","urll":"y"}`, "urll"},
		{"JetStreamWithoutSubjects", `{"url":"nats://x","jetstream":{"enabled":true}}`, "subjects"},
		{"NegativeAckWait", `{"url":"nats://x","jetstream":{"enabled":true,"subjects":["a.>"],"ack_wait_ms":-5}}`, "ack_wait_ms"},
		{"MaxDeliverZero", `{"url":"nats://x","jetstream":{"max_deliver":0}}`, "max_deliver"},
		{"UserWithoutPassword", `{"url":"nats://x","user":"u"}`, "password"},
		{"WrongType", `{"url":"nats://x","reconnect":{"max":"many"}}`, "max"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseConfig(json.RawMessage(tc.config)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("parseConfig(%s) = %v, want an error naming %q", tc.config, err, tc.want)
			}
			// The schema cannot express "user needs password"; parseConfig checks it.
			if tc.name != "UserWithoutPassword" {
				if err := validateAgainstSchema([]byte(tc.config)); err == nil {
					t.Errorf("schema accepted %s", tc.config)
				}
			}
		})
	}
	good := `{"url":"nats://127.0.0.1:4222","name":"svc","user":"u","password":"p","timeout_ms":1000,
	  "jetstream":{"enabled":true,"stream":"ORDERS","subjects":["orders.>"],"max_deliver":-1,"ack_wait_ms":500,"inactive_threshold_ms":60000},
	  "reconnect":{"max":10,"wait_ms":100,"buffer_bytes":1024}}`
	if err := validateAgainstSchema([]byte(good)); err != nil {
		t.Errorf("schema rejected a good config: %v", err)
	}
	o, err := parseConfig(json.RawMessage(good))
	if err != nil {
		t.Fatalf("parseConfig(good) = %v", err)
	}
	if !o.jetstream || o.stream != "ORDERS" || o.maxDeliver != -1 || o.ackWait != 500*time.Millisecond ||
		o.reconnectMax != 10 || o.reconnectWait != 100*time.Millisecond || o.reconnectBufSize != 1024 || o.timeout != time.Second {
		t.Errorf("parseConfig(good) = %+v", o)
	}

	b := newBroker(nil)
	t.Cleanup(func() { _ = b.Close() })
	if err := b.Publish(t.Context(), "a.b", &broker.Message{}); !errors.Is(err, errNotConfigured) {
		t.Errorf("Publish before Configure = %v, want errNotConfigured", err)
	}
	if err := b.Configure(t.Context(), json.RawMessage(`{"url":"nats://127.0.0.1:1","timeout_ms":200}`)); err == nil {
		t.Error("Configure with nobody listening succeeded")
	}
}

// TestJetStreamMaxAttempts checks MaxAttempts becomes the consumer's
// MaxDeliver: a message failing every time is delivered that many times, then
// dropped and reported with broker.ErrMaxAttempts.
func TestJetStreamMaxAttempts(t *testing.T) {
	s := startServer(t, t.TempDir(), server.RANDOM_PORT)
	reported := make(chan error, 4)
	b := openBroker(t, s.ClientURL(), jetStreamConfig("poison.>"), func(_ string, err error) { reported <- err })
	attempts := make(chan int, 8)
	sub, err := b.Subscribe(t.Context(), "poison.pill", func(_ context.Context, d broker.Delivery) error {
		attempts <- d.Attempt()
		return errors.New("always failing")
	}, broker.MaxAttempts(2))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := b.Publish(t.Context(), "poison.pill", &broker.Message{Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	for want := 1; want <= 2; want++ {
		if a := receive(t, attempts, fmt.Sprintf("attempt %d", want)); a != want {
			t.Errorf("attempt %d, want %d", a, want)
		}
	}
	if err := receive(t, reported, "the report"); !errors.Is(err, broker.ErrMaxAttempts) {
		t.Errorf("report %v does not wrap ErrMaxAttempts", err)
	}
	select {
	case a := <-attempts:
		t.Errorf("delivered again (attempt %d) past MaxAttempts", a)
	case <-time.After(300 * time.Millisecond):
	}
	if err := b.Publish(t.Context(), "elsewhere.x", &broker.Message{}); err == nil || !strings.Contains(err.Error(), "jetstream.subjects") {
		t.Errorf("Publish outside the stream's subjects = %v, want an error naming jetstream.subjects", err)
	}
}

// TestCorePublishDuringOutageIsBuffered checks a core-mode publish made while
// the connection is away is held in the reconnect buffer and delivered once
// the server is back, to a subscription the client re-established.
func TestCorePublishDuringOutageIsBuffered(t *testing.T) {
	s1 := startServer(t, t.TempDir(), server.RANDOM_PORT)
	port := s1.Addr().(*net.TCPAddr).Port
	b := openBroker(t, s1.ClientURL(), nil, nil)
	got := make(chan string, 4)
	sub, err := b.Subscribe(t.Context(), "outage.x", func(_ context.Context, d broker.Delivery) error {
		got <- string(d.Message().Body)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })

	b.mu.Lock()
	nc := b.nc
	b.mu.Unlock()
	disconnected := make(chan struct{}, 1)
	nc.SetDisconnectErrHandler(func(*nats.Conn, error) {
		select {
		case disconnected <- struct{}{}:
		default:
		}
	})
	s1.Shutdown()
	s1.WaitForShutdown()
	receive(t, disconnected, "the client to notice the server went away")
	if err := b.Publish(t.Context(), "outage.x", &broker.Message{Body: []byte("buffered")}); err != nil {
		t.Fatalf("Publish while reconnecting: %v", err)
	}
	startServer(t, t.TempDir(), port)
	if m := receive(t, got, "the buffered message after reconnecting"); m != "buffered" {
		t.Errorf("got %q", m)
	}
	if err := sub.Unsubscribe(); err != nil {
		t.Error(err)
	}
	if err := b.Close(); err != nil {
		t.Error(err)
	}
}

// TestJetStreamQueueGroupsStayApart checks two queue groups on one topic whose
// names differ only in characters a consumer name cannot hold ("a.b" and "a_b")
// each get every message, as two groups must, instead of sharing one consumer
// and splitting the messages between them.
func TestJetStreamQueueGroupsStayApart(t *testing.T) {
	s := startServer(t, t.TempDir(), server.RANDOM_PORT)
	b := openBroker(t, s.ClientURL(), jetStreamConfig("apart.>"), nil)
	const n = 20
	counts := map[string]chan string{"a.b": make(chan string, n), "a_b": make(chan string, n)}
	for queue, ch := range counts {
		sub, err := b.Subscribe(t.Context(), "apart.x", func(_ context.Context, d broker.Delivery) error {
			ch <- string(d.Message().Body)
			return nil
		}, broker.Queue(queue))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	for i := range n {
		if err := b.Publish(t.Context(), "apart.x", &broker.Message{Body: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	for queue, ch := range counts {
		for i := range n {
			receive(t, ch, fmt.Sprintf("message %d of %d in queue group %q", i+1, n, queue))
		}
	}
}

// TestJetStreamBatchSurvivesUnansweredPublishes checks publishes the stream
// never acknowledges (a subject outside it that a plain NATS client listens
// on, so nobody answers) time out without staying pending in the client: once
// more of them than the client allows in flight have timed out, batches to the
// stream must still be published.
func TestJetStreamBatchSurvivesUnansweredPublishes(t *testing.T) {
	s := startServer(t, t.TempDir(), server.RANDOM_PORT)
	b := openBroker(t, s.ClientURL(), map[string]any{
		"timeout_ms": 300,
		"jetstream":  map[string]any{"enabled": true, "subjects": []string{"stored.>"}},
	}, nil)
	plain := connect(t, s.ClientURL())
	if _, err := plain.Subscribe("outside.x", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if err := plain.Flush(); err != nil {
		t.Fatal(err)
	}
	const unanswered = 4100 // more than the client's 4000 acks in flight
	batch := make([]broker.Publication, unanswered)
	for i := range batch {
		batch[i] = broker.Publication{Topic: "outside.x", Message: &broker.Message{Body: []byte("x")}}
	}
	errs := b.PublishBatch(t.Context(), batch)()
	if !errors.Is(errs[0], context.DeadlineExceeded) {
		t.Fatalf("unanswered publish: %v, want a timeout", errs[0])
	}
	errs = b.PublishBatch(t.Context(), []broker.Publication{{Topic: "stored.x", Message: &broker.Message{Body: []byte("y")}}})()
	if errs[0] != nil {
		t.Fatalf("publish to the stream after %d unanswered ones: %v", unanswered, errs[0])
	}
}

// TestJetStreamLeavingMemberHandsOver checks a queue group member that
// unsubscribes gives the messages it had fetched but not handled back at once,
// so the other members get them without waiting out the ack wait.
func TestJetStreamLeavingMemberHandsOver(t *testing.T) {
	s := startServer(t, t.TempDir(), server.RANDOM_PORT)
	b := openBroker(t, s.ClientURL(), map[string]any{
		"jetstream": map[string]any{"enabled": true, "subjects": []string{"handover.>"}, "ack_wait_ms": 60000},
	}, nil)
	const n = 20
	started := make(chan struct{}, n)
	leaving, err := b.Subscribe(t.Context(), "handover.x", func(ctx context.Context, _ broker.Delivery) error {
		started <- struct{}{}
		<-ctx.Done() // busy until it leaves: the messages it fetched meanwhile wait in its buffer
		return ctx.Err()
	}, broker.Queue("workers"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := b.Publish(t.Context(), "handover.x", &broker.Message{Body: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	receive(t, started, "the leaving member's first delivery")
	got := make(chan string, 2*n)
	staying, err := b.Subscribe(t.Context(), "handover.x", func(_ context.Context, d broker.Delivery) error {
		got <- string(d.Message().Body)
		return nil
	}, broker.Queue("workers"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = staying.Unsubscribe() })
	if err := leaving.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for len(seen) < n {
		seen[receive(t, got, fmt.Sprintf("message %d of %d at the staying member", len(seen)+1, n))] = true
	}
}
