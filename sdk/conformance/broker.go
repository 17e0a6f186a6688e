package conformance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/microhost/micro/sdk/broker"
	"github.com/microhost/micro/sdk/metadata"
)

// Broker runs the broker.Broker conformance suite. newBroker is called once per
// subtest with that subtest's t and returns a broker connected to the backend
// under test; it registers the broker's Close with t.Cleanup. Subtests may share
// one backend: every topic and queue group is unique to the run, and every
// subscription is unsubscribed when its subtest ends.
//
// The suite expects a subscription to be live when Subscribe returns: a message
// published afterwards reaches it. Deliveries are awaited up to Timeout; checks
// that something does not happen (a second delivery of an acked message, a
// delivery after Unsubscribe) watch for Quiet. SkipOrdering skips the ordering
// subtest.
//
// Subtests (each runnable alone with -run): PublishSubscribe, Wildcards,
// QueueGroups, AutoAckNack, ManualAck, ManualNack, Unsubscribe, InvalidTopic,
// Ordering, TraceContext.
func Broker(t *testing.T, newBroker func(t *testing.T) broker.Broker, opts ...Option) {
	t.Helper()
	s := &brokerSuite{cfg: newConfig(opts), newBroker: newBroker}
	for _, tc := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"PublishSubscribe", s.publishSubscribe},
		{"Wildcards", s.wildcards},
		{"QueueGroups", s.queueGroups},
		{"AutoAckNack", s.autoAckNack},
		{"ManualAck", s.manualAck},
		{"ManualNack", s.manualNack},
		{"Unsubscribe", s.unsubscribe},
		{"InvalidTopic", s.invalidTopic},
		{"Ordering", s.ordering},
		{"TraceContext", s.traceContext},
	} {
		t.Run(tc.name, tc.run)
	}
}

// brokerSuite holds what every broker subtest needs.
type brokerSuite struct {
	cfg       config
	newBroker func(t *testing.T) broker.Broker
}

// delivered is what a recording handler saw of one delivery.
type delivered struct {
	topic   string
	body    string
	header  map[string]string
	attempt int
	sub     int // which of a test's subscribers got it
}

// open returns a broker for one subtest.
func (s *brokerSuite) open(t *testing.T) broker.Broker {
	t.Helper()
	b := s.newBroker(t)
	if b == nil {
		t.Fatal("newBroker returned nil")
	}
	return b
}

// topicBase returns a topic prefix unique to this run and subtest.
func topicBase(t *testing.T) string {
	return "conformance." + slug(t.Name()) + "-" + newID()
}

// subscribe subscribes h to pattern, failing t on error, and unsubscribes when
// the test ends.
func (s *brokerSuite) subscribe(t *testing.T, b broker.Broker, pattern string, h broker.Handler, opts ...broker.SubscribeOption) broker.Subscription {
	t.Helper()
	sub, err := b.Subscribe(t.Context(), pattern, h, opts...)
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", pattern, err)
	}
	if sub == nil {
		t.Fatalf("Subscribe(%q) returned a nil Subscription", pattern)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return sub
}

// publish publishes a message with body and header to topic, failing t on error.
func (s *brokerSuite) publish(t *testing.T, b broker.Broker, topic, body string, header map[string]string) {
	t.Helper()
	if err := b.Publish(callCtx(t, s.cfg.timeout), topic, &broker.Message{Header: header, Body: []byte(body)}); err != nil {
		t.Fatalf("Publish(%q, %q): %v", topic, body, err)
	}
}

// recorder returns a handler that records every delivery on a channel as
// subscriber sub and then returns what decide says (nil: success); decide may
// also Ack or Nack.
func recorder(sub int, decide func(broker.Delivery) error) (broker.Handler, chan delivered) {
	ch := make(chan delivered, 1024)
	h := func(ctx context.Context, d broker.Delivery) error {
		msg := d.Message()
		rec := delivered{topic: d.Topic(), attempt: d.Attempt(), sub: sub}
		if msg != nil {
			rec.body = string(msg.Body)
			rec.header = make(map[string]string, len(msg.Header))
			for k, v := range msg.Header {
				rec.header[k] = v
			}
		}
		var err error
		if decide != nil {
			err = decide(d)
		}
		select {
		case ch <- rec:
		case <-ctx.Done():
		}
		return err
	}
	return h, ch
}

// expectNothing fails t if ch yields a delivery within Quiet.
func (s *brokerSuite) expectNothing(t *testing.T, ch <-chan delivered, why string) {
	t.Helper()
	if d, ok := silent(ch, s.cfg.quiet); !ok {
		t.Errorf("unexpected delivery %q on %q (attempt %d): %s", d.body, d.topic, d.attempt, why)
	}
}

// publishSubscribe checks body, headers and topic arrive intact, attempt 1, once.
func (s *brokerSuite) publishSubscribe(t *testing.T) {
	b := s.open(t)
	topic := topicBase(t) + ".events"
	h, got := recorder(0, nil)
	sub := s.subscribe(t, b, topic, h)
	if sub.Topic() != topic || sub.Queue() != "" {
		t.Errorf("Subscription Topic() = %q, Queue() = %q; want %q and \"\"", sub.Topic(), sub.Queue(), topic)
	}
	body := "binary \x00\x01\xfe\xff and text: zoë 🚀"
	header := map[string]string{"Micro-Conformance-Id": newID(), "Content-Type": "application/octet-stream", "Micro-Conformance-Note": "hello, world"}
	s.publish(t, b, topic, body, header)
	d := receive(t, got, s.cfg.timeout, "the published message")
	if d.topic != topic || d.body != body || d.attempt != 1 {
		t.Errorf("delivery topic %q body %q attempt %d; want %q %q 1", d.topic, d.body, d.attempt, topic, body)
	}
	for k, v := range header {
		if gv, ok := headerValue(d.header, k); gv != v {
			t.Errorf("header %s = %q (present %v), want %q; got %v", k, gv, ok, v, d.header)
		}
	}
	s.expectNothing(t, got, "a message acked on its first delivery came again")
}

// wildcards checks "*" matches exactly one token and ">" one or more, and that
// Delivery.Topic is the concrete topic published to.
func (s *brokerSuite) wildcards(t *testing.T) {
	b := s.open(t)
	base := topicBase(t)
	hOne, one := recorder(0, nil)
	hRest, rest := recorder(1, nil)
	s.subscribe(t, b, base+".*.created", hOne)
	s.subscribe(t, b, base+".>", hRest)

	topics := []string{base + ".orders.created", base + ".orders.eu.created", base + ".created", base + ".orders", base}
	wantOne := []string{base + ".orders.created"}
	wantRest := []string{base + ".orders.created", base + ".orders.eu.created", base + ".created", base + ".orders"}
	for _, topic := range topics {
		s.publish(t, b, topic, topic, nil)
	}
	collect := func(ch <-chan delivered, pattern string, want []string) {
		t.Helper()
		var got []string
		for range want {
			d := receive(t, ch, s.cfg.timeout, fmt.Sprintf("a delivery to %q (have %v, want %v)", pattern, got, want))
			if d.topic != d.body {
				t.Errorf("%q: Delivery.Topic() = %q for a message published to %q", pattern, d.topic, d.body)
			}
			got = append(got, d.body)
		}
		if d, ok := silent(ch, s.cfg.quiet); !ok {
			got = append(got, d.body)
		}
		slices.Sort(got)
		want = slices.Sorted(slices.Values(want))
		if !slices.Equal(got, want) {
			t.Errorf("%q received %v, want %v", pattern, got, want)
		}
	}
	collect(one, base+".*.created", wantOne)
	collect(rest, base+".>", wantRest)
}

// queueGroups checks each message goes to exactly one member of each group and
// every group gets every message.
func (s *brokerSuite) queueGroups(t *testing.T) {
	const n = 30
	b := s.open(t)
	topic := topicBase(t) + ".jobs"
	groups := []struct {
		name    string
		members int
	}{{"workers-" + newID(), 3}, {"auditors-" + newID(), 2}}
	chans := make([]chan delivered, len(groups))
	for g, grp := range groups {
		chans[g] = make(chan delivered, 4*n)
		for m := range grp.members {
			h, ch := recorder(m, nil)
			sub := s.subscribe(t, b, topic, h, broker.Queue(grp.name))
			if sub.Queue() != grp.name || sub.Topic() != topic {
				t.Errorf("Subscription Topic() = %q, Queue() = %q; want %q and %q", sub.Topic(), sub.Queue(), topic, grp.name)
			}
			go forward(t, ch, chans[g])
		}
	}
	for i := range n {
		s.publish(t, b, topic, strconv.Itoa(i), nil)
	}
	for g, grp := range groups {
		seen := make(map[string][]int) // body → members that got it
		for len(seen) < n {
			d := receive(t, chans[g], s.cfg.timeout, fmt.Sprintf("group %s: message %d of %d", grp.name, len(seen)+1, n))
			seen[d.body] = append(seen[d.body], d.sub)
		}
		if d, ok := silent(chans[g], s.cfg.quiet); !ok {
			seen[d.body] = append(seen[d.body], d.sub)
		}
		for body, members := range seen {
			if len(members) != 1 {
				t.Errorf("group %s: message %s delivered %d times (to members %v), want once", grp.name, body, len(members), members)
			}
		}
	}
}

// forward copies from into to until the test ends.
func forward(t *testing.T, from <-chan delivered, to chan<- delivered) {
	for {
		select {
		case d := <-from:
			select {
			case to <- d:
			case <-t.Context().Done():
				return
			}
		case <-t.Context().Done():
			return
		}
	}
}

// autoAckNack checks a handler error nacks: the message comes again, intact,
// with a higher Attempt, and once the handler succeeds it does not come again.
func (s *brokerSuite) autoAckNack(t *testing.T) {
	b := s.open(t)
	topic := topicBase(t) + ".retry"
	h, got := recorder(0, func(d broker.Delivery) error {
		if d.Attempt() == 1 {
			return errors.New("conformance: failing the first attempt on purpose")
		}
		return nil
	})
	s.subscribe(t, b, topic, h, broker.AutoAck(true))
	header := map[string]string{"Micro-Conformance-Id": newID()}
	s.publish(t, b, topic, "again", header)
	first := receive(t, got, s.cfg.timeout, "the first attempt")
	if first.attempt != 1 {
		t.Errorf("first delivery has Attempt %d, want 1", first.attempt)
	}
	second := receive(t, got, s.cfg.timeout, "the redelivery after the handler returned an error")
	if second.attempt <= first.attempt || second.body != "again" {
		t.Errorf("redelivery body %q attempt %d; want %q with an attempt above %d", second.body, second.attempt, "again", first.attempt)
	}
	if v, _ := headerValue(second.header, "Micro-Conformance-Id"); v != header["Micro-Conformance-Id"] {
		t.Errorf("redelivery lost its header: %v", second.header)
	}
	s.expectNothing(t, got, "the handler succeeded on the redelivery, which acks it")
}

// manualAck checks that without AutoAck an explicit Ack settles the message even
// when the handler then returns an error.
func (s *brokerSuite) manualAck(t *testing.T) {
	b := s.open(t)
	topic := topicBase(t) + ".ack"
	ackErr := make(chan error, 16)
	h, got := recorder(0, func(d broker.Delivery) error {
		ackErr <- d.Ack()
		return errors.New("conformance: an explicit Ack wins over this error")
	})
	s.subscribe(t, b, topic, h, broker.AutoAck(false))
	s.publish(t, b, topic, "ack me", nil)
	if d := receive(t, got, s.cfg.timeout, "the message"); d.body != "ack me" || d.attempt != 1 {
		t.Errorf("delivery %q attempt %d, want %q attempt 1", d.body, d.attempt, "ack me")
	}
	if err := receive(t, ackErr, s.cfg.timeout, "Ack's result"); err != nil {
		t.Errorf("Ack: %v", err)
	}
	s.expectNothing(t, got, "the handler acked it")
}

// manualNack checks that without AutoAck an explicit Nack, and a delivery left
// unsettled when its handler returns, both lead to redelivery, and that an Ack on
// the redelivery ends it.
func (s *brokerSuite) manualNack(t *testing.T) {
	b := s.open(t)
	topic := topicBase(t) + ".nack"
	settleErr := make(chan error, 16)
	h, got := recorder(0, func(d broker.Delivery) error {
		switch {
		case d.Attempt() > 1:
			settleErr <- d.Ack()
		case string(d.Message().Body) == "nack":
			settleErr <- d.Nack()
		default: // "unsettled": neither Ack nor Nack, which counts as a Nack
		}
		return nil // ignored without AutoAck
	})
	s.subscribe(t, b, topic, h, broker.AutoAck(false))
	s.publish(t, b, topic, "nack", nil)
	s.publish(t, b, topic, "unsettled", nil)

	attempts := map[string][]int{}
	for range 4 {
		d := receive(t, got, s.cfg.timeout, fmt.Sprintf("four deliveries (have %v)", attempts))
		attempts[d.body] = append(attempts[d.body], d.attempt)
	}
	for _, body := range []string{"nack", "unsettled"} {
		a := attempts[body]
		if len(a) != 2 || a[0] != 1 || a[1] <= 1 {
			t.Errorf("%q delivered with attempts %v, want 1 then a redelivery above 1", body, a)
		}
	}
	for range 3 { // one Nack, two Acks
		if err := receive(t, settleErr, s.cfg.timeout, "Ack's and Nack's results"); err != nil {
			t.Errorf("settling: %v", err)
		}
	}
	s.expectNothing(t, got, "the redeliveries were acked")
}

// unsubscribe checks Unsubscribe stops delivery while another subscription to
// the same topic keeps receiving.
func (s *brokerSuite) unsubscribe(t *testing.T) {
	b := s.open(t)
	topic := topicBase(t) + ".bye"
	hGone, gone := recorder(0, nil)
	hStay, stay := recorder(1, nil)
	sub := s.subscribe(t, b, topic, hGone)
	s.subscribe(t, b, topic, hStay)

	s.publish(t, b, topic, "before", nil)
	receive(t, gone, s.cfg.timeout, "the message before Unsubscribe")
	receive(t, stay, s.cfg.timeout, "the message before Unsubscribe, by the subscription that stays")
	if err := sub.Unsubscribe(); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	s.publish(t, b, topic, "after", nil)
	if d := receive(t, stay, s.cfg.timeout, "the message after Unsubscribe, by the subscription that stays"); d.body != "after" {
		t.Errorf("remaining subscription got %q, want %q", d.body, "after")
	}
	s.expectNothing(t, gone, "published after Unsubscribe returned")
}

// invalidTopic checks malformed topics and patterns are refused with an error
// wrapping broker.ErrInvalidTopic.
func (s *brokerSuite) invalidTopic(t *testing.T) {
	b := s.open(t)
	base := topicBase(t)
	for _, topic := range []string{"", base + "..x", "." + base, base + ".", base + ".*", base + ".>"} {
		err := b.Publish(callCtx(t, s.cfg.timeout), topic, &broker.Message{Body: []byte("x")})
		if !errors.Is(err, broker.ErrInvalidTopic) {
			t.Errorf("Publish(%q) = %v, want an error wrapping broker.ErrInvalidTopic", topic, err)
		}
	}
	noop := func(context.Context, broker.Delivery) error { return nil }
	for _, pattern := range []string{"", base + "..x", base + ".>.x"} {
		sub, err := b.Subscribe(t.Context(), pattern, noop)
		if !errors.Is(err, broker.ErrInvalidTopic) {
			t.Errorf("Subscribe(%q) = %v, want an error wrapping broker.ErrInvalidTopic", pattern, err)
		}
		if sub != nil {
			_ = sub.Unsubscribe()
		}
	}
}

// ordering checks one subscription receives one publisher's messages in order.
func (s *brokerSuite) ordering(t *testing.T) {
	if s.cfg.skipOrdering {
		t.Skip("ordering skipped by conformance.SkipOrdering")
	}
	const n = 100
	b := s.open(t)
	topic := topicBase(t) + ".seq"
	h, got := recorder(0, nil)
	s.subscribe(t, b, topic, h)
	for i := range n {
		s.publish(t, b, topic, strconv.Itoa(i), nil)
	}
	for i := range n {
		d := receive(t, got, s.cfg.timeout, fmt.Sprintf("message %d of %d", i+1, n))
		if d.body != strconv.Itoa(i) {
			t.Fatalf("delivery %d is message %s, want %d: one publisher's messages must arrive in order", i, d.body, i)
		}
	}
}

// traceContext checks W3C trace context in the header reaches the handler.
func (s *brokerSuite) traceContext(t *testing.T) {
	const (
		traceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		traceState  = "conformance=1,vendor=t61rcWkgMzE"
	)
	b := s.open(t)
	topic := topicBase(t) + ".traced"
	h, got := recorder(0, nil)
	s.subscribe(t, b, topic, h)
	s.publish(t, b, topic, "traced", map[string]string{metadata.TraceParent: traceParent, metadata.TraceState: traceState})
	d := receive(t, got, s.cfg.timeout, "the traced message")
	for k, want := range map[string]string{metadata.TraceParent: traceParent, metadata.TraceState: traceState} {
		if v, _ := headerValue(d.header, k); v != want {
			t.Errorf("header %s = %q, want %q; got %v", k, v, want, d.header)
		}
	}
	if d.body != "traced" {
		t.Errorf("body %q, want %q", d.body, "traced")
	}
}
