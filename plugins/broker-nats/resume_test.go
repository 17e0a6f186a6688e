package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/microhost/micro/sdk/broker"
	pluginv1 "github.com/microhost/micro/sdk/plugin/proto/micro/plugin/v1"
)

// resumeWait bounds the waits of these tests.
const resumeWait = 20 * time.Second

// tcpGate forwards TCP connections to a server while open. Shut, it refuses new
// connections as an unreachable server does; cut breaks the forwarded ones.
type tcpGate struct {
	t      testing.TB
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener // nil while shut
	conns map[net.Conn]struct{}
}

// openGate forwards a free loopback port to target until the test ends.
func openGate(t testing.TB, target string) *tcpGate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &tcpGate{t: t, target: target, addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	g.serve(ln)
	t.Cleanup(func() { g.shut(); g.cut() })
	return g
}

// url is the NATS URL of the gate.
func (g *tcpGate) url() string { return "nats://" + g.addr }

// serve accepts on ln and forwards each connection.
func (g *tcpGate) serve(ln net.Listener) {
	g.mu.Lock()
	g.ln = ln
	g.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			g.mu.Lock()
			g.conns[c] = struct{}{}
			g.mu.Unlock()
			go g.forward(c)
		}
	}()
}

// forward copies between c and a new connection to the target until either ends.
func (g *tcpGate) forward(c net.Conn) {
	defer func() {
		g.mu.Lock()
		delete(g.conns, c)
		g.mu.Unlock()
		_ = c.Close()
	}()
	s, err := net.Dial("tcp", g.target)
	if err != nil {
		return
	}
	defer s.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(s, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, s); done <- struct{}{} }()
	<-done
}

// shut stops accepting: new connections are refused.
func (g *tcpGate) shut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln != nil {
		_ = g.ln.Close()
		g.ln = nil
	}
}

// reopen accepts again on the same address.
func (g *tcpGate) reopen() {
	ln, err := net.Listen("tcp", g.addr)
	if err != nil {
		g.t.Fatalf("reopen the gate on %s: %v", g.addr, err)
	}
	g.serve(ln)
}

// cut breaks every forwarded connection.
func (g *tcpGate) cut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for c := range g.conns {
		_ = c.Close()
	}
}

// jetStreamClient is a plain nats.go JetStream client on url, closed when the
// test ends.
func jetStreamClient(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(connect(t, url))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// onlyConsumer returns the name of the default stream's one consumer, failing
// the test when there is not exactly one.
func onlyConsumer(t testing.TB, js jetstream.JetStream) string {
	t.Helper()
	names := consumerNames(t, js)
	if len(names) != 1 {
		t.Fatalf("consumers %v; want the subscription's only", names)
	}
	return names[0]
}

// consumerNames lists the consumers of the broker's default stream, sorted.
func consumerNames(t testing.TB, js jetstream.JetStream) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, defaultStream)
	if err != nil {
		t.Fatal(err)
	}
	lister := st.ConsumerNames(ctx)
	var names []string
	for name := range lister.Name() {
		names = append(names, name)
	}
	if err := lister.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	return names
}

// waitUntil polls cond until it holds, failing the test after resumeWait.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(resumeWait)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", resumeWait, what)
		}
		<-tick.C
	}
}

// deliveredAgain publishes bodies starting with round to topic through js
// until one of them arrives on got, failing the test after resumeWait.
func deliveredAgain(t *testing.T, js jetstream.JetStream, topic, round string, got <-chan string) {
	t.Helper()
	i := 0
	waitUntil(t, fmt.Sprintf("a delivery on %s (%s)", topic, round), func() bool {
		i++
		if _, err := js.Publish(t.Context(), topic, []byte(fmt.Sprintf("%s-%d", round, i))); err != nil {
			t.Fatal(err)
		}
		select {
		case body := <-got:
			return strings.HasPrefix(body, round+"-")
		case <-time.After(100 * time.Millisecond):
			return false
		}
	})
}

// TestConsumerName checks a subscription id names a plain subscription's
// consumer the same each time, apart per topic and sanitized like queue names;
// a queue group keeps its group's consumer, and no id gives a new consumer.
func TestConsumerName(t *testing.T) {
	if got, want := consumerName("orders.placed", "", "ABC"), fmt.Sprintf("micro-sub-ABC-%08x", fnv32("orders.placed")); got != want {
		t.Errorf("with an id: %q, want %q", got, want)
	}
	if consumerName("orders.placed", "", "ABC") == consumerName("orders.paid", "", "ABC") {
		t.Error("one id on two topics gives one consumer; want two")
	}
	if got, want := consumerName("t", "", "a.b"), fmt.Sprintf("micro-sub-a_b-%08x-%08x", fnv32("a.b"), fnv32("t")); got != want {
		t.Errorf("with an id to sanitize: %q, want %q", got, want)
	}
	if consumerName("t", "", "a.b") == consumerName("t", "", "a_b") {
		t.Error(`ids "a.b" and "a_b" give one consumer; want two`)
	}
	if got, want := consumerName("t", "q", "ABC"), consumerName("t", "q", ""); got != want {
		t.Errorf("a queue group member with an id: %q, want the group's %q", got, want)
	}
	long := strings.Repeat("x", 300)
	if a, b := consumerName("t", "", long+"1"), consumerName("t", "", long+"2"); a == b || a != consumerName("t", "", long+"1") {
		t.Errorf("two long ids with the same start: %q and %q; want two names, each the same every time", a, b)
	}
	if a, b := consumerName("t", "", ""), consumerName("t", "", ""); a == b || !strings.HasPrefix(a, "micro-sub-") {
		t.Errorf("two subscriptions without an id: %q and %q; want two micro-sub- consumers", a, b)
	}
}

// TestJetStreamLongNames subscribes with a subscription id and a queue name
// too long to name a consumer as they are: each subscription still gets a
// consumer of its own the server accepts, and receives.
func TestJetStreamLongNames(t *testing.T) {
	s := startServer(t, t.TempDir(), server.RANDOM_PORT)
	b := openBroker(t, s.ClientURL(), jetStreamConfig("long.>"), nil)
	js := jetStreamClient(t, s.ClientURL())
	long := strings.Repeat("x", 300)
	parent := t
	for _, tc := range []struct {
		name string
		opts []broker.SubscribeOption
	}{
		{"ID", []broker.SubscribeOption{broker.SubscriptionID(long + "1")}},
		{"IDSameStart", []broker.SubscribeOption{broker.SubscriptionID(long + "2")}},
		{"MultibyteID", []broker.SubscribeOption{broker.SubscriptionID(strings.Repeat("é", 200))}},
		{"SanitizedID", []broker.SubscribeOption{broker.SubscriptionID(strings.Repeat("a.", 150))}},
		{"Queue", []broker.SubscribeOption{broker.Queue(strings.Repeat("q", 250))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan string, 64)
			sub, err := b.Subscribe(t.Context(), "long.x", func(_ context.Context, d broker.Delivery) error {
				select { // the other subscriptions' messages too, never blocking
				case got <- string(d.Message().Body):
				default:
				}
				return nil
			}, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			parent.Cleanup(func() { _ = sub.Unsubscribe() }) // the consumers are counted below
			deliveredAgain(t, js, "long.x", tc.name, got)
		})
	}
	names := consumerNames(t, js)
	if len(names) != 5 {
		t.Fatalf("consumers %q; want one per subscription", names)
	}
	for _, name := range names {
		if len(name) > 255 || !utf8.ValidString(name) {
			t.Errorf("consumer name %q (%d bytes): want valid UTF-8 of at most 255 bytes", name, len(name))
		}
	}
}

// TestJetStreamConsumerDeletedUnderSubscription deletes a live subscription's
// consumer on the server, as an operator may: the subscription makes it again
// and goes on receiving what is published afterwards.
func TestJetStreamConsumerDeletedUnderSubscription(t *testing.T) {
	s := startServer(t, t.TempDir(), server.RANDOM_PORT)
	b := openBroker(t, s.ClientURL(), jetStreamConfig("deleted.>"), nil)
	js := jetStreamClient(t, s.ClientURL())
	for _, tc := range []struct{ name, topic, queue string }{
		{"Plain", "deleted.plain", ""},
		{"QueueGroup", "deleted.group", "workers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic, queue := tc.topic, tc.queue
			got := make(chan string, 64)
			var opts []broker.SubscribeOption
			if queue != "" {
				opts = append(opts, broker.Queue(queue))
			}
			sub, err := b.Subscribe(t.Context(), topic, func(_ context.Context, d broker.Delivery) error {
				got <- string(d.Message().Body)
				return nil
			}, opts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sub.Unsubscribe() })
			name := onlyConsumer(t, js)
			if err := js.DeleteConsumer(t.Context(), defaultStream, name); err != nil {
				t.Fatal(err)
			}
			deliveredAgain(t, js, topic, "after-delete", got)
			if again := consumerNames(t, js); len(again) != 1 || again[0] != name {
				t.Errorf("consumers %v; want %s made again", again, name)
			}
			if err := sub.Unsubscribe(); err != nil {
				t.Fatal(err)
			}
			if queue != "" { // a queue group's consumer outlives its members
				_ = js.DeleteConsumer(t.Context(), defaultStream, name)
			}
		})
	}
}

// TestJetStreamConsumerExpiredWhileDisconnected keeps a subscriber's
// connection away past InactiveThreshold, so the server deletes its consumer:
// once back, the subscription makes it again instead of going silent.
func TestJetStreamConsumerExpiredWhileDisconnected(t *testing.T) {
	s := startServer(t, t.TempDir(), server.RANDOM_PORT)
	gate := openGate(t, s.Addr().String())
	b := openBroker(t, gate.url(), map[string]any{
		"jetstream": map[string]any{"enabled": true, "subjects": []string{"expired.>"}, "ack_wait_ms": 1000, "inactive_threshold_ms": 200},
	}, nil)
	js := jetStreamClient(t, s.ClientURL())
	got := make(chan string, 64)
	sub, err := b.Subscribe(t.Context(), "expired.x", func(_ context.Context, d broker.Delivery) error {
		got <- string(d.Message().Body)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	deliveredAgain(t, js, "expired.x", "before", got)

	gate.shut()
	gate.cut()
	waitUntil(t, "the server to delete the idle consumer", func() bool { return len(consumerNames(t, js)) == 0 })
	gate.reopen()
	deliveredAgain(t, js, "expired.x", "after", got)
}

// TestPluginSubscriptionResumesAfterCrash kills the plugin process (SIGKILL)
// under a plain JetStream subscription and publishes straight to NATS while no
// plugin process serves the subscription (the restarted one cannot reach NATS
// until the gate opens again). Once the supervisor restarted the plugin and the
// host re-subscribed, every message stored meanwhile arrives, and so does the
// one the dead process had delivered but never saw settled.
func TestPluginSubscriptionResumesAfterCrash(t *testing.T) {
	s := startServer(t, t.TempDir(), server.RANDOM_PORT)
	gate := openGate(t, s.Addr().String())
	inst := startPlugin(t, map[string]any{
		"url":       gate.url(),
		"reconnect": map[string]any{"wait_ms": 20},
		"jetstream": map[string]any{"enabled": true, "subjects": []string{"crash.>"}, "ack_wait_ms": 1000},
	})
	js := jetStreamClient(t, s.ClientURL())

	type delivery struct {
		body    string
		attempt int
	}
	got := make(chan delivery, 256)
	held := make(chan struct{}, 1)
	sub, err := inst.Broker().Subscribe(t.Context(), "crash.events", func(ctx context.Context, d broker.Delivery) error {
		body := string(d.Message().Body)
		if body == "in-flight" && d.Attempt() == 1 {
			held <- struct{}{}
			<-ctx.Done() // the plugin dies before this delivery is settled
			return ctx.Err()
		}
		got <- delivery{body, d.Attempt()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := inst.Broker().Publish(t.Context(), "crash.events", &broker.Message{Body: []byte("before")}); err != nil {
		t.Fatal(err)
	}
	if d := receive(t, got, "the message published before the crash"); d.body != "before" {
		t.Fatalf("got %q, want before", d.body)
	}
	if err := inst.Broker().Publish(t.Context(), "crash.events", &broker.Message{Body: []byte("in-flight")}); err != nil {
		t.Fatal(err)
	}
	receive(t, held, "the delivery in flight at the crash")

	gate.shut()
	pid := inst.Pid()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	const n = 20
	want := map[string]bool{"in-flight": true}
	for i := range n {
		body := fmt.Sprintf("gap-%d", i)
		if _, err := js.Publish(t.Context(), "crash.events", []byte(body)); err != nil {
			t.Fatalf("publish %s: %v", body, err)
		}
		want[body] = true
	}
	if inst.Pid() != 0 && inst.Pid() != pid {
		t.Fatal("the plugin restarted while NATS was unreachable; the messages were not published in a gap")
	}
	gate.reopen()

	deadline := time.After(resumeWait)
	for len(want) > 0 {
		select {
		case d := <-got:
			if d.body == "in-flight" && d.attempt < 2 {
				t.Errorf("the message in flight at the crash came again with attempt %d, want 2 or more", d.attempt)
			}
			delete(want, d.body)
		case <-deadline:
			missing := make([]string, 0, len(want))
			for body := range want {
				missing = append(missing, body)
			}
			sort.Strings(missing)
			t.Fatalf("after the restart %d messages never arrived: %v (consumers: %v)", len(missing), missing, consumerNames(t, js))
		}
	}
	if inst.Restarts() < 1 || inst.Pid() == pid {
		t.Errorf("restarts %d, pid %d (killed %d): want a new process", inst.Restarts(), inst.Pid(), pid)
	}
	if names := consumerNames(t, js); len(names) != 1 {
		t.Errorf("consumers %v; want only the resumed one", names)
	}
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if names := consumerNames(t, js); len(names) != 0 {
		t.Errorf("consumers %v after Unsubscribe; want none", names)
	}
}

// TestPluginSubscribeFromOlderHost subscribes as a host from before subscription
// ids: its SubscribeRequest carries none, and the plugin still subscribes
// through a consumer of its own, delivers, takes the settlement and deletes the
// consumer when the host ends the stream.
func TestPluginSubscribeFromOlderHost(t *testing.T) {
	s := startServer(t, t.TempDir(), server.RANDOM_PORT)
	inst := startPlugin(t, map[string]any{
		"url":       s.ClientURL(),
		"jetstream": map[string]any{"enabled": true, "subjects": []string{"older.>"}, "ack_wait_ms": 1000},
	})
	js := jetStreamClient(t, s.ClientURL())
	cc, err := inst.Current()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), resumeWait)
	defer cancel()
	stream, err := pluginv1.NewBrokerClient(cc).Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&pluginv1.SubscribeClientMessage{Msg: &pluginv1.SubscribeClientMessage_Subscribe{
		Subscribe: &pluginv1.SubscribeRequest{Topic: "older.events"},
	}}); err != nil {
		t.Fatal(err)
	}
	if md, err := stream.Header(); err != nil || md == nil {
		t.Fatalf("the subscription without an id did not go live: %v", err)
	}
	if names := consumerNames(t, js); len(names) != 1 || !strings.HasPrefix(names[0], "micro-sub-") {
		t.Fatalf("consumers %v; want one micro-sub-", names)
	}
	if _, err := js.Publish(ctx, "older.events", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	d, err := stream.Recv()
	if err != nil || string(d.GetMessage().GetBody()) != "hello" || d.GetAttempt() != 1 {
		t.Fatalf("delivery %v, %v; want hello, attempt 1", d, err)
	}
	if err := stream.Send(&pluginv1.SubscribeClientMessage{Msg: &pluginv1.SubscribeClientMessage_Settle{
		Settle: &pluginv1.Settle{DeliveryId: d.GetId(), Ack: true},
	}}); err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("the stream ended with %v, want io.EOF", err)
	}
	waitUntil(t, "the consumer to be deleted", func() bool { return len(consumerNames(t, js)) == 0 })
}

// TestPluginSubscriptionIDHasOneSubscription subscribes twice under one
// subscription id through the plugin: sharing the id would share the durable
// consumer, each subscription getting only some of the messages, so the second
// is refused and the first gets them all.
func TestPluginSubscriptionIDHasOneSubscription(t *testing.T) {
	s := startServer(t, t.TempDir(), server.RANDOM_PORT)
	inst := startPlugin(t, map[string]any{
		"url":       s.ClientURL(),
		"jetstream": map[string]any{"enabled": true, "subjects": []string{"shared.>"}, "ack_wait_ms": 1000},
	})
	got := make(chan string, 64)
	sub, err := inst.Broker().Subscribe(t.Context(), "shared.events", func(_ context.Context, d broker.Delivery) error {
		got <- string(d.Message().Body)
		return nil
	}, broker.SubscriptionID("mailer"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	other, err := inst.Broker().Subscribe(t.Context(), "shared.events", func(context.Context, broker.Delivery) error { return nil },
		broker.SubscriptionID("mailer"))
	if err == nil {
		t.Cleanup(func() { _ = other.Unsubscribe() })
		t.Error("a second subscription under the id of a live one was accepted")
	}
	const n = 10
	for i := range n {
		if err := inst.Broker().Publish(t.Context(), "shared.events", &broker.Message{Body: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		if body := receive(t, got, fmt.Sprintf("message %d of %d", i+1, n)); body != fmt.Sprint(i) {
			t.Fatalf("message %d is %q, want %d", i, body, i)
		}
	}
}
