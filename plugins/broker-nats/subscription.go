package main

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/microhost/micro/sdk/broker"
	"github.com/microhost/micro/sdk/metadata"
)

// subscription is a live NATS subscription (core mode) or a JetStream consumer
// being consumed (JetStream mode) feeding one handler.
type subscription struct {
	b          *natsBroker
	topic      string
	opts       broker.SubscribeOptions
	h          broker.Handler
	ctx        context.Context // handlers' parent: the Subscribe ctx's values, cancelled at Unsubscribe
	cancel     context.CancelFunc
	maxDeliver int           // deliveries allowed per message; -1 unlimited
	slots      chan struct{} // nil: handlers run one at a time on the delivery goroutine

	mu      sync.Mutex // guards stopped and wg.Add
	stopped bool
	wg      sync.WaitGroup // handlers in flight

	stop    func() // stops the NATS subscription or the consume loop
	cleanup func() // removes what Subscribe created on the server, if anything
	once    sync.Once
}

// newSubscription prepares a subscription; startCore or startJetStream opens it.
func newSubscription(ctx context.Context, b *natsBroker, topic string, h broker.Handler, o broker.SubscribeOptions) *subscription {
	s := &subscription{b: b, topic: topic, opts: o, h: h, maxDeliver: 1, stop: func() {}, cleanup: func() {}}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if o.Concurrency > 1 {
		s.slots = make(chan struct{}, o.Concurrency)
	}
	return s
}

// Topic is the subscribed pattern.
func (s *subscription) Topic() string { return s.topic }

// Queue is the queue group name, "" for a plain subscription.
func (s *subscription) Queue() string { return s.opts.Queue }

// String names the subscription in errors.
func (s *subscription) String() string {
	if s.opts.Queue != "" {
		return fmt.Sprintf("subscription to %q (queue %q)", s.topic, s.opts.Queue)
	}
	return fmt.Sprintf("subscription to %q", s.topic)
}

// startCore subscribes on the NATS connection and waits until the server has
// the subscription, so a message published afterwards reaches it.
func (s *subscription) startCore(ctx context.Context, nc *nats.Conn, o options) error {
	cb := func(m *nats.Msg) {
		header, md := fromNATSHeader(m.Header)
		s.dispatch(&delivery{topic: m.Subject, msg: broker.Message{Header: header, Body: m.Data}, md: md, attempt: 1}, func() {})
	}
	var (
		sub *nats.Subscription
		err error
	)
	if s.opts.Queue != "" {
		sub, err = nc.QueueSubscribe(s.topic, s.opts.Queue, cb)
	} else {
		sub, err = nc.Subscribe(s.topic, cb)
	}
	if err != nil {
		return fmt.Errorf("broker nats: %s: %w", s, err)
	}
	if s.opts.Buffer > 0 {
		_ = sub.SetPendingLimits(s.opts.Buffer, -1)
	}
	if err := flush(ctx, nc, o.timeout); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("broker nats: %s: the server did not confirm it: %w", s, err)
	}
	s.stop = func() { _ = sub.Unsubscribe() }
	return nil
}

// flush waits for the server to process everything sent so far, up to ctx's
// deadline or timeout.
func flush(ctx context.Context, nc *nats.Conn, timeout time.Duration) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return nc.FlushWithContext(ctx)
}

// startJetStream creates (or, for a queue group, joins) a durable consumer of
// the stream filtered on the topic, delivering only messages stored from now
// on, and starts consuming it.
func (s *subscription) startJetStream(ctx context.Context, js jetstream.JetStream, o options) error {
	s.maxDeliver = o.maxDeliver
	if s.opts.MaxAttempts > 0 {
		s.maxDeliver = s.opts.MaxAttempts
	}
	name := consumerName(s.topic, s.opts.Queue)
	cctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	cons, err := js.CreateOrUpdateConsumer(cctx, o.stream, jetstream.ConsumerConfig{
		Durable:           name,
		FilterSubject:     s.topic,
		AckPolicy:         jetstream.AckExplicitPolicy,
		DeliverPolicy:     jetstream.DeliverNewPolicy,
		MaxDeliver:        s.maxDeliver,
		AckWait:           o.ackWait,
		InactiveThreshold: o.inactiveThreshold,
	})
	if err != nil {
		return fmt.Errorf("broker nats: %s: create consumer %s on stream %s: %w (does jetstream.subjects %v cover the topic?)", s, name, o.stream, err, o.subjects)
	}
	var consumeOpts []jetstream.PullConsumeOpt
	if s.opts.Buffer > 0 {
		consumeOpts = append(consumeOpts, jetstream.PullMaxMessages(s.opts.Buffer))
	}
	cc, err := cons.Consume(s.consumeJS, consumeOpts...)
	if err != nil {
		return fmt.Errorf("broker nats: %s: consume %s: %w", s, name, err)
	}
	s.stop = func() {
		// Drain, not Stop: the messages already fetched still reach dispatch,
		// which naks them, so the server redelivers them at once (to another
		// member, for a queue group) instead of after the ack wait.
		cc.Drain()
		select {
		case <-cc.Closed():
		case <-time.After(o.timeout):
		}
	}
	if s.opts.Queue == "" { // a queue group's consumer outlives its members; InactiveThreshold removes it
		s.cleanup = func() {
			if !js.Conn().IsConnected() { // left to InactiveThreshold
				return
			}
			dctx, cancel := context.WithTimeout(context.Background(), o.timeout)
			defer cancel()
			_ = js.DeleteConsumer(dctx, o.stream, name)
		}
	}
	return nil
}

// consumeJS turns one JetStream message into a delivery.
func (s *subscription) consumeJS(m jetstream.Msg) {
	attempt := 1
	if meta, err := m.Metadata(); err == nil && meta.NumDelivered > 0 {
		attempt = int(meta.NumDelivered)
	}
	header, md := fromNATSHeader(m.Headers())
	d := &delivery{topic: m.Subject(), msg: broker.Message{Header: header, Body: m.Data()}, md: md, attempt: attempt, js: m}
	s.dispatch(d, func() { _ = m.Nak() })
}

// consumerName is the durable consumer of a subscription: after the queue
// group for a group (plus a hash of the topic, so one group name may serve
// several topics), unique otherwise. A queue name that had to be sanitized also
// gets a hash of itself, so "a.b" and "a_b" stay two groups.
func consumerName(topic, queue string) string {
	if queue == "" {
		return "micro-sub-" + nuid.Next()
	}
	group := sanitize(queue)
	if group != queue {
		group = fmt.Sprintf("%s-%08x", group, fnv32(queue))
	}
	return fmt.Sprintf("micro-queue-%s-%08x", group, fnv32(topic))
}

// fnv32 is the FNV-1a hash of s.
func fnv32(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

// sanitize replaces what a consumer name may not hold.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '.', r == '*', r == '>', r == '/', r == '\\', r <= ' ', r == 0x7f:
			return '_'
		}
		return r
	}, s)
}

// dispatch runs the handler for d, inline or in a concurrency slot; reject gives
// the message back when the subscription has stopped.
func (s *subscription) dispatch(d *delivery, reject func()) {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		reject()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	if s.slots == nil {
		defer s.wg.Done()
		s.run(d)
		return
	}
	select {
	case s.slots <- struct{}{}:
	case <-s.ctx.Done():
		reject()
		s.wg.Done()
		return
	}
	go func() {
		defer func() { <-s.slots; s.wg.Done() }()
		s.run(d)
	}()
}

// run calls the handler with the header as incoming metadata and settles d.
// A message nacked on its last allowed attempt, or nacked at all in core mode,
// is reported to the broker's error hook.
func (s *subscription) run(d *delivery) {
	err := s.call(metadata.NewIncomingContext(s.ctx, d.md), d)
	if !d.finish(s.opts.AutoAck, err) {
		return
	}
	switch {
	case d.js == nil:
		s.b.onError(d.topic, fmt.Errorf("broker nats: %s nacked a message on %q, which core NATS cannot redeliver (enable jetstream for at-least-once): %w",
			s, d.topic, errOrNack(err)))
	case s.maxDeliver > 0 && d.attempt >= s.maxDeliver:
		s.b.onError(d.topic, fmt.Errorf("broker nats: %s dropped a message on %q after %d attempts: %w: %w",
			s, d.topic, d.attempt, broker.ErrMaxAttempts, errOrNack(err)))
	}
}

// call runs the handler, turning a panic into an error.
func (s *subscription) call(ctx context.Context, d *delivery) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("broker nats: handler of %s panicked: %v", s, r)
		}
	}()
	return s.h(ctx, d)
}

// errOrNack is err, or a note that the handler nacked without one.
func errOrNack(err error) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("the handler nacked it")
}

// Unsubscribe stops deliveries, waits for the handlers in flight (their context
// is cancelled) and, for a plain JetStream subscription, deletes its consumer.
// It is idempotent and must not be called from the subscription's handler.
func (s *subscription) Unsubscribe() error {
	s.once.Do(func() {
		s.mu.Lock()
		s.stopped = true
		s.mu.Unlock()
		s.cancel() // first: the handlers in flight end, so stop need not wait for them
		s.stop()
		s.wg.Wait()
		s.cleanup()
		s.b.forget(s)
	})
	return nil
}
