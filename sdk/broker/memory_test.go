package broker_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microhost/micro/sdk/broker"
	"github.com/microhost/micro/sdk/metadata"
)

// patience bounds every wait; a correct broker answers in milliseconds.
const patience = 10 * time.Second

// newBroker returns a memory broker closed when the test ends.
func newBroker(t testing.TB, opts ...broker.MemoryOption) *broker.Memory {
	t.Helper()
	m := broker.NewMemory(opts...)
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// subscribe subscribes or fails the test.
func subscribe(t testing.TB, m *broker.Memory, topic string, h broker.Handler, opts ...broker.SubscribeOption) broker.Subscription {
	t.Helper()
	sub, err := m.Subscribe(context.Background(), topic, h, opts...)
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", topic, err)
	}
	return sub
}

// publish publishes body to topic or fails the test.
func publish(t testing.TB, m *broker.Memory, topic, body string) {
	t.Helper()
	if err := m.Publish(context.Background(), topic, &broker.Message{Body: []byte(body)}); err != nil {
		t.Fatalf("Publish(%q): %v", topic, err)
	}
}

// receive returns the next value of ch, failing the test after patience.
func receive[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(patience)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// waitDone fails the test unless ch closes within patience.
func waitDone(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	receive(t, ch, what)
}

// got is what a recording handler saw of one delivery.
type got struct {
	topic   string
	body    string
	attempt int
}

// recorder returns a handler sending what it sees to a channel large enough
// never to block it.
func recorder(size int) (broker.Handler, <-chan got) {
	ch := make(chan got, size)
	return func(_ context.Context, d broker.Delivery) error {
		ch <- got{d.Topic(), string(d.Message().Body), d.Attempt()}
		return nil
	}, ch
}

func TestName(t *testing.T) {
	if got := newBroker(t).Name(); got != "memory" {
		t.Errorf("Name() = %q, want memory", got)
	}
}

func TestFanOutToPlainSubscribers(t *testing.T) {
	m := newBroker(t)
	patterns := []string{"orders.created", "orders.*", "orders.>", ">"}
	chans := make([]<-chan got, len(patterns))
	for i, p := range patterns {
		h, ch := recorder(4)
		subscribe(t, m, p, h)
		chans[i] = ch
	}
	publish(t, m, "orders.created", "o-1")
	for i, ch := range chans {
		g := receive(t, ch, patterns[i])
		if g != (got{"orders.created", "o-1", 1}) {
			t.Errorf("%s got %+v", patterns[i], g)
		}
	}
}

func TestPublishWithoutSubscribersIsNotAnError(t *testing.T) {
	if err := newBroker(t).Publish(context.Background(), "nobody.listens", &broker.Message{}); err != nil {
		t.Errorf("Publish = %v, want nil", err)
	}
}

func TestQueueGroupDeliversEachMessageOnce(t *testing.T) {
	const n, members = 300, 3
	m := newBroker(t)
	var (
		mu     sync.Mutex
		seen   = make(map[string]int)
		counts [members]int
		total  int
		all    = make(chan struct{})
	)
	for i := range members {
		subscribe(t, m, "jobs.*", func(_ context.Context, d broker.Delivery) error {
			mu.Lock()
			defer mu.Unlock()
			seen[string(d.Message().Body)]++
			counts[i]++
			if total++; total == n {
				close(all)
			}
			return nil
		}, broker.Queue("workers"))
	}
	for i := range n {
		publish(t, m, "jobs.resize", fmt.Sprint(i))
	}
	waitDone(t, all, "every message")
	if err := m.Close(); err != nil { // waits for every handler: nothing more can arrive
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if total != n || len(seen) != n {
		t.Fatalf("%d deliveries of %d distinct messages, want %d of %d", total, len(seen), n, n)
	}
	for i, c := range counts {
		if c != n/members {
			t.Errorf("member %d got %d messages, want %d (round robin)", i, c, n/members)
		}
	}
}

func TestTwoQueueGroupsEachGetEveryMessage(t *testing.T) {
	const n = 50
	m := newBroker(t)
	type groupCount struct {
		mu   sync.Mutex
		seen map[string]bool
		all  chan struct{}
	}
	groups := map[string]*groupCount{}
	for _, name := range []string{"billing", "audit"} {
		gc := &groupCount{seen: map[string]bool{}, all: make(chan struct{})}
		groups[name] = gc
		for range 2 {
			subscribe(t, m, "orders.>", func(_ context.Context, d broker.Delivery) error {
				gc.mu.Lock()
				defer gc.mu.Unlock()
				body := string(d.Message().Body)
				if gc.seen[body] {
					t.Errorf("group %s got %s twice", name, body)
				}
				if gc.seen[body] = true; len(gc.seen) == n {
					close(gc.all)
				}
				return nil
			}, broker.Queue(name))
		}
	}
	for i := range n {
		publish(t, m, "orders.paid", fmt.Sprint(i))
	}
	for name, gc := range groups {
		waitDone(t, gc.all, "every message in group "+name)
	}
}

func TestAutoAckNackRedelivers(t *testing.T) {
	m := newBroker(t)
	ch := make(chan got, 4)
	subscribe(t, m, "mail.send", func(_ context.Context, d broker.Delivery) error {
		ch <- got{d.Topic(), string(d.Message().Body), d.Attempt()}
		if d.Attempt() == 1 {
			return errors.New("smtp down")
		}
		return nil
	})
	publish(t, m, "mail.send", "hello")
	publish(t, m, "mail.send", "next")
	want := []got{{"mail.send", "hello", 1}, {"mail.send", "hello", 2}, {"mail.send", "next", 1}, {"mail.send", "next", 2}}
	for _, w := range want {
		if g := receive(t, ch, fmt.Sprint(w)); g != w {
			t.Errorf("got %+v, want %+v", g, w)
		}
	}
}

func TestManualAckNack(t *testing.T) {
	m := newBroker(t)
	type step struct {
		body    string
		attempt int
		err     error // from the late Ack of the previous, unsettled delivery
	}
	ch := make(chan step, 8)
	var unsettled broker.Delivery
	subscribe(t, m, "pay.>", func(_ context.Context, d broker.Delivery) error {
		s := step{body: string(d.Message().Body), attempt: d.Attempt()}
		if unsettled != nil { // its handler returned, which counted as a Nack
			s.err = unsettled.Ack()
			unsettled = nil
		}
		switch {
		case s.body == "p1" && d.Attempt() == 1:
			if err := d.Nack(); err != nil {
				t.Errorf("Nack: %v", err)
			}
			if err := d.Nack(); err != nil {
				t.Errorf("second Nack: %v, want nil", err)
			}
			if err := d.Ack(); !errors.Is(err, broker.ErrAlreadySettled) {
				t.Errorf("Ack after Nack = %v, want ErrAlreadySettled", err)
			}
		case s.body == "p1" && d.Attempt() == 2:
			unsettled = d // neither Ack nor Nack: redelivered
		case s.body == "p1":
			if err := d.Ack(); err != nil {
				t.Errorf("Ack: %v", err)
			}
		case s.body == "p2":
			if err := d.Ack(); err != nil {
				t.Errorf("Ack: %v", err)
			}
			ch <- s
			return errors.New("an error after Ack does not nack")
		}
		ch <- s
		return nil
	}, broker.AutoAck(false))
	publish(t, m, "pay.card", "p1")
	publish(t, m, "pay.card", "p2")
	publish(t, m, "pay.card", "p3") // proves p2 was not redelivered
	for _, w := range []step{{"p1", 1, nil}, {"p1", 2, nil}, {"p1", 3, broker.ErrAlreadySettled}, {"p2", 1, nil}, {"p3", 1, nil}} {
		g := receive(t, ch, fmt.Sprint(w))
		if g.body != w.body || g.attempt != w.attempt || !errors.Is(g.err, w.err) {
			t.Errorf("got %+v, want %+v", g, w)
		}
		if g.err != nil && !strings.Contains(g.err.Error(), "counts as a Nack") {
			t.Errorf("late Ack error %q does not explain the expiry", g.err)
		}
	}
}

func TestMaxAttemptsCallsErrorHandler(t *testing.T) {
	errBoom := errors.New("boom")
	type report struct {
		topic string
		err   error
	}
	reports := make(chan report, 1)
	m := newBroker(t, broker.WithErrorHandler(func(topic string, err error) {
		reports <- report{topic, err}
	}))
	attempts := make(chan int, 8)
	subscribe(t, m, "flaky.*", func(_ context.Context, d broker.Delivery) error {
		attempts <- d.Attempt()
		return errBoom
	}, broker.MaxAttempts(3))
	publish(t, m, "flaky.job", "x")
	r := receive(t, reports, "the error hook")
	if r.topic != "flaky.job" || !errors.Is(r.err, broker.ErrMaxAttempts) || !errors.Is(r.err, errBoom) {
		t.Errorf("hook got (%q, %v), want flaky.job wrapping ErrMaxAttempts and the handler error", r.topic, r.err)
	}
	if !strings.Contains(r.err.Error(), "after 3 attempts") {
		t.Errorf("hook error %q does not give the attempt count", r.err)
	}
	for want := 1; want <= 3; want++ {
		if got := receive(t, attempts, "an attempt"); got != want {
			t.Errorf("attempt %d, want %d", got, want)
		}
	}
}

func TestHandlerPanicNacks(t *testing.T) {
	m := newBroker(t)
	h, ch := recorder(2)
	subscribe(t, m, "p", func(ctx context.Context, d broker.Delivery) error {
		if d.Attempt() == 1 {
			panic("handler bug")
		}
		return h(ctx, d)
	})
	publish(t, m, "p", "x")
	if g := receive(t, ch, "the redelivery"); g.attempt != 2 {
		t.Errorf("got %+v, want attempt 2", g)
	}
}

func TestQueueGroupRedeliversToAnotherMember(t *testing.T) {
	const n = 20
	reports := make(chan error, n)
	m := newBroker(t, broker.WithErrorHandler(func(_ string, err error) { reports <- err }))
	subscribe(t, m, "tasks", func(context.Context, broker.Delivery) error {
		return errors.New("member A always fails")
	}, broker.Queue("q"))
	acked := make(chan got, n)
	subscribe(t, m, "tasks", func(_ context.Context, d broker.Delivery) error {
		acked <- got{d.Topic(), string(d.Message().Body), d.Attempt()}
		return nil
	}, broker.Queue("q"))
	for i := range n {
		publish(t, m, "tasks", fmt.Sprint(i))
	}
	seen := map[string]bool{}
	for range n {
		g := receive(t, acked, "a delivery to member B")
		if seen[g.body] || g.attempt > 2 {
			t.Errorf("member B got %+v (seen before: %v), want each once by attempt 2", g, seen[g.body])
		}
		seen[g.body] = true
	}
	select {
	case err := <-reports:
		t.Errorf("a message was dropped: %v", err)
	default:
	}
}

// blocker is a handler that signals each start and then waits for its context
// to end or for release.
type blocker struct {
	started chan string
	release chan struct{}
}

func newBlocker() *blocker {
	return &blocker{started: make(chan string, 64), release: make(chan struct{})}
}

func (b *blocker) handle(ctx context.Context, d broker.Delivery) error {
	b.started <- string(d.Message().Body)
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// goroutinesBack waits until the goroutine count is back to at most base.
func goroutinesBack(t *testing.T, base int) {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(patience)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines left, want %d:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		<-tick.C
	}
}

func TestSlowConsumerFailsPublishButOthersGetTheMessage(t *testing.T) {
	base := runtime.NumGoroutine()
	m := broker.NewMemory()
	slow := newBlocker()
	subscribe(t, m, "metrics.cpu", slow.handle, broker.Buffer(1))
	fast, fastGot := recorder(8)
	subscribe(t, m, "metrics.*", fast)

	publish(t, m, "metrics.cpu", "m1") // the slow handler takes it and blocks
	receive(t, slow.started, "the slow handler")
	publish(t, m, "metrics.cpu", "m2") // fills the slow buffer of 1

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := m.Publish(ctx, "metrics.cpu", &broker.Message{Body: []byte("m3")})
	if !errors.Is(err, broker.ErrSlowConsumer) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish = %v, want ErrSlowConsumer after the deadline", err)
	}
	if took := time.Since(start); took > patience/2 {
		t.Errorf("Publish took %v", took)
	}
	for _, want := range []string{`"metrics.cpu"`, "subscription 1", "Buffer", "1 undelivered", "queue group"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	for _, want := range []string{"m1", "m2", "m3"} {
		if g := receive(t, fastGot, "the fast subscriber"); g.body != want {
			t.Errorf("fast subscriber got %q, want %q", g.body, want)
		}
	}

	// Without a deadline Publish does not wait at all.
	err = m.Publish(context.Background(), "metrics.cpu", &broker.Message{Body: []byte("m4")})
	if !errors.Is(err, broker.ErrSlowConsumer) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Publish without deadline = %v, want ErrSlowConsumer at once", err)
	}

	closed := make(chan struct{})
	go func() { _ = m.Close(); close(closed) }() // cancels the blocked handler
	waitDone(t, closed, "Close")
	goroutinesBack(t, base)
}

func TestPublishWaitsForRoomUntilDeadline(t *testing.T) {
	m := newBroker(t)
	slow := newBlocker()
	subscribe(t, m, "q", slow.handle, broker.Buffer(1))
	publish(t, m, "q", "m1")
	receive(t, slow.started, "m1")
	publish(t, m, "q", "m2")

	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.Publish(ctx, "q", &broker.Message{Body: []byte("m3")}) }()
	close(slow.release) // the handler drains: room for m3
	if err := receive(t, done, "the waiting Publish"); err != nil {
		t.Fatalf("Publish = %v, want nil once room was made", err)
	}
	for _, want := range []string{"m2", "m3"} {
		if g := receive(t, slow.started, want); g != want {
			t.Errorf("got %q, want %q", g, want)
		}
	}
}

func TestCloseWakesWaitingPublisher(t *testing.T) {
	m := broker.NewMemory()
	slow := newBlocker()
	subscribe(t, m, "q", slow.handle, broker.Buffer(1))
	publish(t, m, "q", "m1")
	receive(t, slow.started, "m1")
	publish(t, m, "q", "m2")
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.Publish(ctx, "q", &broker.Message{Body: []byte("m3")}) }()
	_ = m.Close()
	if err := receive(t, done, "the waiting Publish"); err == nil {
		t.Errorf("Publish = nil after Close, want an error")
	} else if !errors.Is(err, broker.ErrClosed) && !errors.Is(err, broker.ErrSlowConsumer) {
		t.Errorf("Publish = %v, want ErrClosed (or ErrSlowConsumer if it gave up first)", err)
	}
}

func TestNackWithFullBufferDoesNotDeadlock(t *testing.T) {
	const n = 20
	m := newBroker(t)
	acked := make(chan got, n)
	subscribe(t, m, "retry", func(_ context.Context, d broker.Delivery) error {
		if d.Attempt() == 1 {
			return errors.New("first try fails")
		}
		acked <- got{d.Topic(), string(d.Message().Body), d.Attempt()}
		return nil
	}, broker.Buffer(1))
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	for i := range n {
		if err := m.Publish(ctx, "retry", &broker.Message{Body: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatalf("Publish %d: %v", i, err)
		}
	}
	for i := range n {
		if g := receive(t, acked, "an ack"); g.body != fmt.Sprint(i) || g.attempt != 2 {
			t.Errorf("got %+v, want body %d at attempt 2", g, i)
		}
	}
}

func TestUnsubscribeStopsDeliveryAndWaitsForHandler(t *testing.T) {
	m := newBroker(t)
	slow := newBlocker()
	var calls, returned atomic.Int32
	sub := subscribe(t, m, "news.*", func(ctx context.Context, d broker.Delivery) error {
		calls.Add(1)
		defer returned.Add(1)
		return slow.handle(ctx, d)
	})
	if sub.Topic() != "news.*" || sub.Queue() != "" {
		t.Errorf("Topic, Queue = %q, %q", sub.Topic(), sub.Queue())
	}
	witness, witnessGot := recorder(8)
	subscribe(t, m, "news.>", witness)

	publish(t, m, "news.sport", "n1")
	receive(t, slow.started, "the handler")
	unsubscribed := make(chan struct{})
	go func() {
		if err := sub.Unsubscribe(); err != nil {
			t.Errorf("Unsubscribe: %v", err)
		}
		close(unsubscribed)
	}()
	// The handler only returns when its context is cancelled by Unsubscribe.
	waitDone(t, unsubscribed, "Unsubscribe")
	if returned.Load() != 1 {
		t.Error("Unsubscribe returned before the handler in flight")
	}
	if err := sub.Unsubscribe(); err != nil {
		t.Errorf("second Unsubscribe: %v", err)
	}

	publish(t, m, "news.sport", "n2")
	for _, want := range []string{"n1", "n2"} {
		if g := receive(t, witnessGot, want); g.body != want {
			t.Errorf("witness got %q, want %q", g.body, want)
		}
	}
	if err := m.Close(); err != nil { // any stray delivery would have run by now
		t.Fatal(err)
	}
	if c := calls.Load(); c != 1 {
		t.Errorf("handler called %d times, want 1", c)
	}
}

func TestUnsubscribingMemberHandsQueuedMessagesToTheGroup(t *testing.T) {
	const n = 10
	m := newBroker(t)
	a := newBlocker()
	subA := subscribe(t, m, "work", a.handle, broker.Queue("g"))
	got := make(chan string, 2*n)
	subscribe(t, m, "work", func(_ context.Context, d broker.Delivery) error {
		got <- string(d.Message().Body)
		return nil
	}, broker.Queue("g"))
	for i := range n {
		publish(t, m, "work", fmt.Sprint(i))
	}
	receive(t, a.started, "member A") // A holds one in flight and more queued
	if err := subA.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for len(seen) < n {
		seen[receive(t, got, "a message at member B")] = true
	}
}

func TestCloseRefusesPublishAndSubscribe(t *testing.T) {
	m := broker.NewMemory()
	h, _ := recorder(1)
	subscribe(t, m, "a", h)
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
	if err := m.Publish(context.Background(), "a", &broker.Message{}); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
	if _, err := m.Subscribe(context.Background(), "a", h); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Subscribe after Close = %v, want ErrClosed", err)
	}
}

func TestSubscribeRejectsBadArguments(t *testing.T) {
	m := newBroker(t)
	h, _ := recorder(1)
	ctx := context.Background()
	if _, err := m.Subscribe(ctx, "a", nil); err == nil {
		t.Error("nil handler accepted")
	}
	if _, err := m.Subscribe(ctx, "a", h, broker.Buffer(-1)); err == nil {
		t.Error("negative Buffer accepted")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.Subscribe(cancelled, "a", h); !errors.Is(err, context.Canceled) {
		t.Errorf("Subscribe with a cancelled context = %v", err)
	}
	if err := m.Publish(cancelled, "a", &broker.Message{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Publish with a cancelled context = %v", err)
	}
	if err := m.Publish(ctx, "a", nil); err == nil {
		t.Error("nil message accepted")
	}
}

func TestHeadersAndBodyAreIsolated(t *testing.T) {
	m := newBroker(t)
	type view struct {
		header map[string]string
		body   string
	}
	views := make(chan view, 8)
	for range 2 {
		subscribe(t, m, "iso", func(_ context.Context, d broker.Delivery) error {
			msg := d.Message()
			views <- view{map[string]string{"X-Id": msg.Header["X-Id"]}, string(msg.Body)}
			msg.Header["X-Id"] = "mutated"
			msg.Body[0] = 'Z'
			if d.Attempt() == 1 {
				return errors.New("again") // the redelivery must not see the mutation
			}
			return nil
		})
	}
	msg := &broker.Message{Header: map[string]string{"X-Id": "42"}, Body: []byte("abc")}
	if err := m.Publish(context.Background(), "iso", msg); err != nil {
		t.Fatal(err)
	}
	msg.Header["X-Id"] = "publisher changed it"
	msg.Body[0] = 'P'
	for range 4 { // two subscribers, two attempts each
		v := receive(t, views, "a delivery")
		if v.header["X-Id"] != "42" || v.body != "abc" {
			t.Errorf("handler saw %+v, want X-Id 42 and abc", v)
		}
	}
}

func TestTraceContextTravelsToHandler(t *testing.T) {
	const (
		tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		ts = "vendor=1"
	)
	m := newBroker(t)
	type seen struct {
		incoming metadata.MD
		header   map[string]string
	}
	ch := make(chan seen, 2)
	subscribe(t, m, "traced.*", func(ctx context.Context, d broker.Delivery) error {
		md, ok := metadata.FromIncomingContext(ctx)
		if !ok {
			t.Error("no incoming metadata in the handler context")
		}
		ch <- seen{md, d.Message().Header}
		return nil
	})

	ctx := metadata.NewOutgoingContext(context.Background(), metadata.MD{"traceparent": tp, "tracestate": ts})
	if err := m.Publish(ctx, "traced.a", &broker.Message{Header: map[string]string{"x-tenant": "acme"}}); err != nil {
		t.Fatal(err)
	}
	s := receive(t, ch, "the traced delivery")
	if v, _ := s.incoming.Get(metadata.TraceParent); v != tp {
		t.Errorf("incoming traceparent = %q, want %q", v, tp)
	}
	if v, _ := s.incoming.Get(metadata.TraceState); v != ts {
		t.Errorf("incoming tracestate = %q, want %q", v, ts)
	}
	if v, _ := s.incoming.Get("X-Tenant"); v != "acme" {
		t.Errorf("incoming X-Tenant = %q, want acme", v)
	}
	if s.header[metadata.TraceParent] != tp || s.header["x-tenant"] != "acme" {
		t.Errorf("message header = %v, want the traceparent added and x-tenant kept", s.header)
	}

	// A traceparent already in the header wins over the context's.
	own := "00-11111111111111111111111111111111-2222222222222222-01"
	if err := m.Publish(ctx, "traced.b", &broker.Message{Header: map[string]string{"traceparent": own}}); err != nil {
		t.Fatal(err)
	}
	s = receive(t, ch, "the second delivery")
	if v, _ := s.incoming.Get(metadata.TraceParent); v != own {
		t.Errorf("incoming traceparent = %q, want the header's own %q", v, own)
	}
	if _, ok := s.incoming.Get(metadata.TraceState); ok {
		t.Errorf("tracestate copied from the context beside the header's own traceparent")
	}
}

func TestConcurrencyRunsHandlersInParallel(t *testing.T) {
	m := newBroker(t)
	var running atomic.Int32
	both := make(chan struct{})
	subscribe(t, m, "par", func(ctx context.Context, d broker.Delivery) error {
		if running.Add(1) == 2 {
			close(both)
		}
		select { // each handler waits for the other: only parallel handlers finish
		case <-both:
		case <-ctx.Done():
		}
		return nil
	}, broker.Concurrency(2))
	publish(t, m, "par", "1")
	publish(t, m, "par", "2")
	waitDone(t, both, "two handlers at once")
}

func TestPublishMatchingAllocatesNothing(t *testing.T) {
	m := newBroker(t)
	h, _ := recorder(1)
	subscribe(t, m, "orders.*.eu", h)
	subscribe(t, m, "orders.>", h, broker.Queue("q"))
	ctx := context.Background()
	msg := &broker.Message{Body: []byte("x")}
	// Nobody matches "users.created": what Publish does is validate and match.
	allocs := testing.AllocsPerRun(100, func() {
		if err := m.Publish(ctx, "users.created", msg); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("validating and matching allocate %v times per Publish, want 0", allocs)
	}
}
