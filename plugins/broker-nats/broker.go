package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/microhost/micro/sdk/broker"
)

// errNotConfigured is returned by Publish and Subscribe before Configure.
var errNotConfigured = errors.New("broker nats: not configured; the host calls Configure with the plugin's config block (url is required)")

// natsBroker is broker.Broker over NATS. Topics are NATS subjects as they are:
// "*" and ">" mean the same in both.
//
// Core mode (the default) is at-most-once: Publish hands the message to the
// server and a subscriber that is away, slow past its pending limits, or that
// nacks, loses it. Ack and Nack only settle the delivery; Attempt is always 1.
//
// JetStream mode is at-least-once: a stream stores the configured subjects,
// Publish waits for the server's ack, each subscription reads through its own
// durable consumer (a queue group shares one, named after the group; a plain
// subscription's is named after its SubscriptionID when it has one, so the
// host's re-subscription after a plugin crash resumes it and gets what was
// stored meanwhile), Ack acks, Nack (a handler error with AutoAck, or a delivery
// left unsettled) naks for an immediate redelivery, Attempt is the consumer's
// delivery count and MaxAttempts is the consumer's MaxDeliver. Unsubscribe
// deletes a plain subscription's consumer; a crash leaves it to
// InactiveThreshold.
//
// The connection reconnects forever by default and buffers publishes made while
// it is away (reconnect.buffer_bytes); JetStream consumers resume by themselves,
// and one the server deleted meanwhile (InactiveThreshold, an operator) is made
// again: a plain subscription's from the first message it had not handled, so
// what was stored while it did not exist arrives too; a queue group's with the
// messages stored from then on (see consumeAgain).
type natsBroker struct {
	onError func(topic string, err error)

	mu     sync.Mutex // guards everything below
	opts   options
	nc     *nats.Conn
	js     jetstream.JetStream // nil in core mode
	subs   map[*subscription]struct{}
	closed bool
}

var _ broker.Broker = (*natsBroker)(nil)

// newBroker returns an unconfigured broker; onError receives what has no caller
// to go to: messages given up on after their last attempt, and subscriptions
// whose consumer cannot be made again (nil: unreported).
func newBroker(onError func(topic string, err error)) *natsBroker {
	if onError == nil {
		onError = func(string, error) {}
	}
	return &natsBroker{onError: onError, subs: make(map[*subscription]struct{})}
}

// Name is "nats".
func (b *natsBroker) Name() string { return "nats" }

// Configure parses config, connects and, in JetStream mode, creates or updates
// the stream. It replaces any earlier connection and its subscriptions.
func (b *natsBroker) Configure(ctx context.Context, raw json.RawMessage) error {
	o, err := parseConfig(raw)
	if err != nil {
		return err
	}
	return b.connect(ctx, o)
}

// connect dials with o and swaps the new connection in.
func (b *natsBroker) connect(ctx context.Context, o options) error {
	nc, err := nats.Connect(o.url, natsOptions(o)...)
	if err != nil {
		return fmt.Errorf("broker nats: connect to %s: %w", o.url, err)
	}
	var js jetstream.JetStream
	if o.jetstream {
		if js, err = setupStream(ctx, nc, o); err != nil {
			nc.Close()
			return err
		}
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		nc.Close()
		return fmt.Errorf("broker nats: configure: %w", broker.ErrClosed)
	}
	old, oldSubs := b.nc, b.takeSubs()
	b.opts, b.nc, b.js = o, nc, js
	b.mu.Unlock()
	stopAll(oldSubs)
	if old != nil {
		old.Close()
	}
	return nil
}

// natsOptions are the connection options o asks for.
func natsOptions(o options) []nats.Option {
	opts := []nats.Option{
		nats.Name(o.name),
		nats.Timeout(o.timeout),
		nats.MaxReconnects(o.reconnectMax),
		nats.ReconnectWait(o.reconnectWait),
		nats.ReconnectBufSize(o.reconnectBufSize),
	}
	if o.token != "" {
		opts = append(opts, nats.Token(o.token))
	}
	if o.user != "" {
		opts = append(opts, nats.UserInfo(o.user, o.password))
	}
	return opts
}

// setupStream creates or updates the stream o names over o's subjects.
func setupStream(ctx context.Context, nc *nats.Conn, o options) (jetstream.JetStream, error) {
	// An async publish nobody acknowledges (a subject outside the stream that
	// a plain client listens on) must leave the client's pending acks when
	// PublishBatch gives up on it: once 4000 are pending, every async publish
	// stalls and fails.
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(o.timeout), jetstream.WithPublishAsyncTimeout(o.timeout))
	if err != nil {
		return nil, fmt.Errorf("broker nats: jetstream: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:     o.stream,
		Subjects: o.subjects,
		Storage:  jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("broker nats: create or update stream %s over %v: %w (is JetStream enabled on the server?)", o.stream, o.subjects, err)
	}
	return js, nil
}

// state returns the connection and settings, or an error once closed or before
// Configure.
func (b *natsBroker) state(op, topic string) (*nats.Conn, jetstream.JetStream, options, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return nil, nil, options{}, fmt.Errorf("broker nats: %s %q: %w", op, topic, broker.ErrClosed)
	case b.nc == nil:
		return nil, nil, options{}, fmt.Errorf("broker nats: %s %q: %w", op, topic, errNotConfigured)
	}
	return b.nc, b.js, b.opts, nil
}

// Publish sends msg to topic with its header as NATS headers; W3C trace context
// in ctx's outgoing metadata is added when the header has no Traceparent. In
// JetStream mode it returns once the server stored the message.
func (b *natsBroker) Publish(ctx context.Context, topic string, msg *broker.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("broker nats: publish %q: %w", topic, err)
	}
	if err := broker.ValidateTopic(topic); err != nil {
		return err
	}
	if msg == nil {
		return fmt.Errorf("broker nats: publish %q: the message is nil", topic)
	}
	nc, js, o, err := b.state("publish", topic)
	if err != nil {
		return err
	}
	m := &nats.Msg{Subject: topic, Header: toNATSHeader(ctx, msg.Header), Data: msg.Body}
	if js == nil {
		if err := nc.PublishMsg(m); err != nil {
			return fmt.Errorf("broker nats: publish %q: %w", topic, err)
		}
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	if _, err := js.PublishMsg(ctx, m); err != nil {
		return jetStreamPublishError(topic, o, err)
	}
	return nil
}

// jetStreamPublishError explains a failed JetStream publish; when no stream
// stores topic it says which setting to change.
func jetStreamPublishError(topic string, o options, err error) error {
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
		return fmt.Errorf("broker nats: publish %q: no stream stores it: add a matching subject to jetstream.subjects (%v): %w", topic, o.subjects, err)
	}
	return fmt.Errorf("broker nats: publish %q: %w", topic, err)
}

// Subscribe starts delivering messages on topic (wildcards allowed) to h. ctx
// bounds the call; handlers get a context with ctx's values, cancelled when the
// subscription stops. The subscription is live on the server when it returns.
func (b *natsBroker) Subscribe(ctx context.Context, topic string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("broker nats: subscribe to %q: %w", topic, err)
	}
	if err := broker.ValidatePattern(topic); err != nil {
		return nil, err
	}
	so := broker.NewSubscribeOptions(opts...)
	if so.Buffer < 0 || so.MaxAttempts < 0 || so.Concurrency < 0 {
		return nil, fmt.Errorf("broker nats: subscribe to %q: Buffer (%d), MaxAttempts (%d) and Concurrency (%d) may not be negative; 0 means the default",
			topic, so.Buffer, so.MaxAttempts, so.Concurrency)
	}
	nc, js, o, err := b.state("subscribe to", topic)
	if err != nil {
		return nil, err
	}
	s := newSubscription(ctx, b, topic, h, so)
	if js == nil {
		err = s.startCore(ctx, nc, o)
	} else {
		err = s.startJetStream(ctx, js, o)
	}
	if err != nil {
		s.cancel()
		return nil, err
	}
	b.mu.Lock()
	if b.closed || b.nc != nc { // closed or reconfigured meanwhile
		b.mu.Unlock()
		_ = s.Unsubscribe()
		return nil, fmt.Errorf("broker nats: subscribe to %q: %w", topic, broker.ErrClosed)
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s, nil
}

// Close stops every subscription, waiting for handlers in flight, and closes
// the connection after flushing what was published. It is idempotent.
func (b *natsBroker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	nc, subs, timeout := b.nc, b.takeSubs(), b.opts.timeout
	b.mu.Unlock()
	stopAll(subs)
	if nc != nil {
		if nc.IsConnected() { // while reconnecting, what is buffered cannot be flushed
			_ = nc.FlushTimeout(timeout)
		}
		nc.Close()
	}
	return nil
}

// takeSubs empties the live set and returns what it held; b.mu must be held.
func (b *natsBroker) takeSubs() []*subscription {
	subs := make([]*subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	clear(b.subs)
	return subs
}

// forget removes s from the live set.
func (b *natsBroker) forget(s *subscription) {
	b.mu.Lock()
	delete(b.subs, s)
	b.mu.Unlock()
}

// stopAll unsubscribes every subscription in subs.
func stopAll(subs []*subscription) {
	for _, s := range subs {
		_ = s.Unsubscribe()
	}
}
