package plugin

import (
	"context"
	"crypto/rand"
	stderrors "errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/microhost/micro/sdk/broker"
	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/metadata"
	pluginv1 "github.com/microhost/micro/sdk/plugin/proto/micro/plugin/v1"
)

// How a subscription re-opens its stream after it broke.
const (
	// resubscribeBackoffBase is the first wait before re-opening a broken stream
	// when conn reports no restart; a restart (Changed) cuts any wait short.
	resubscribeBackoffBase = 50 * time.Millisecond
	// resubscribeBackoffMax caps the wait between attempts.
	resubscribeBackoffMax = 5 * time.Second
	// unsubscribeDrainTimeout bounds how long Unsubscribe waits for the plugin to
	// end the stream after the host closed its side.
	unsubscribeDrainTimeout = 2 * time.Second
)

// brokerClient is broker.Broker over a broker plugin's gRPC connection: the host
// side of the broker kind.
type brokerClient struct {
	name string
	conn Conn
	pub  *streamPublisher // publishes without a deadline share one stream

	mu     sync.Mutex
	subs   map[*clientSubscription]struct{}
	ids    map[string]struct{} // subscription ids in use, until their subscription is done
	closed bool
}

var _ broker.Broker = (*brokerClient)(nil)

// NewBrokerClient returns the broker served by the plugin behind conn, named name.
// Publish uses the connection current at that moment and fails fast with conn's
// 503 error while the plugin is down. Subscriptions survive restarts: a broken
// Subscribe stream is re-opened, and its SubscribeRequest re-sent, as soon as conn
// reports the restart (or after a capped backoff), until Unsubscribe, Close or
// conn.Stopped. Every stream of one subscription carries the same subscription
// id (the caller's broker.SubscriptionID, or a random one), so a plugin whose
// backend keeps per-subscriber state resumes it; messages published while no
// stream is open are the plugin's to keep or lose, as its backend allows.
func NewBrokerClient(name string, conn Conn) broker.Broker {
	return &brokerClient{
		name: name,
		conn: conn,
		pub:  &streamPublisher{name: name, conn: conn},
		subs: make(map[*clientSubscription]struct{}),
		ids:  make(map[string]struct{}),
	}
}

// Name is the name the host gave the plugin.
func (c *brokerClient) Name() string { return c.name }

// Publish sends msg to topic and returns once the plugin published it.
// Concurrent publishes share one PublishStream and cross the boundary in
// batches, each carrying its publisher's deadline; a message too big for a
// batch takes the unary Publish call. W3C trace context (Traceparent,
// Tracestate, Baggage) in ctx's outgoing metadata is added to the header when it
// has no Traceparent, as the memory broker does; msg itself is never changed.
func (c *brokerClient) Publish(ctx context.Context, topic string, msg *broker.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("broker %s: publish %q: %w", c.name, topic, err)
	}
	if msg == nil {
		return fmt.Errorf("broker %s: publish %q: the message is nil", c.name, topic)
	}
	if err := broker.ValidateTopic(topic); err != nil {
		return err
	}
	if c.isClosed() {
		return fmt.Errorf("broker %s: publish %q: %w", c.name, topic, broker.ErrClosed)
	}
	pm := brokerMessageToProto(withTraceContext(ctx, msg))
	if batched, err := c.pub.publish(ctx, topic, pm); batched {
		return err
	}
	cc, err := c.conn.Current()
	if err != nil {
		return err
	}
	_, err = pluginv1.NewBrokerClient(cc).Publish(ctx, &pluginv1.PublishRequest{Topic: topic, Message: pm})
	return c.fail(fmt.Sprintf("publish %q", topic), err)
}

// Subscribe opens a Subscribe stream for topic and returns once the plugin's
// subscription is live (the plugin sends its response headers then), so every
// later publish reaches it. Handlers run on the host with the delivery's header
// as incoming metadata; AutoAck is applied here (nil return acks, an error or a
// panic nacks), and without it the handler's own Ack or Nack is sent to the
// plugin, an unsettled delivery counting as nacked. At most Concurrency handlers
// (default one, in order) run at once. ctx bounds only this call: handlers get a
// context with its values that ends at Unsubscribe or when the stream breaks.
func (c *brokerClient) Subscribe(ctx context.Context, topic string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("broker %s: subscribe to %q: %w", c.name, topic, err)
	}
	if err := broker.ValidatePattern(topic); err != nil {
		return nil, err
	}
	o := broker.NewSubscribeOptions(opts...)
	if o.SubscriptionID == "" {
		// One identity for every stream this subscription opens, so the plugin
		// resumes its state after a restart instead of starting afresh.
		o.SubscriptionID = rand.Text()
	}
	switch {
	case h == nil:
		return nil, fmt.Errorf("broker %s: subscribe to %q: the handler is nil", c.name, topic)
	case o.Buffer < 0, o.MaxAttempts < 0, o.Concurrency < 0:
		return nil, fmt.Errorf("broker %s: subscribe to %q: Buffer (%d), MaxAttempts (%d) and Concurrency (%d) may not be negative; 0 means the default",
			c.name, topic, o.Buffer, o.MaxAttempts, o.Concurrency)
	}
	s := &clientSubscription{
		c:     c,
		topic: topic,
		h:     h,
		opts:  o,
		req:   subscribeRequest(topic, o),
		slots: make(chan struct{}, max(o.Concurrency, 1)),
		done:  make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		s.cancel()
		return nil, fmt.Errorf("broker %s: subscribe to %q: %w", c.name, topic, broker.ErrClosed)
	}
	if _, taken := c.ids[o.SubscriptionID]; taken {
		c.mu.Unlock()
		s.cancel()
		return nil, fmt.Errorf("broker %s: subscribe to %q: subscription id %q belongs to another live subscription, and two would share what the plugin keeps for it (a durable consumer, splitting its messages): give each subscription its own id, or none for a random one",
			c.name, topic, o.SubscriptionID)
	}
	c.ids[o.SubscriptionID] = struct{}{}
	c.subs[s] = struct{}{}
	c.mu.Unlock()
	st, err := s.open(ctx, c.conn.Changed())
	if err != nil {
		c.forget(s)
		s.cancel()
		s.finish()
		return nil, err
	}
	go s.run(st)
	return s, nil
}

// Close unsubscribes everything, waiting for the handlers in flight, and makes
// Publish and Subscribe fail with ErrClosed. It is idempotent and must not be
// called from a handler.
func (c *brokerClient) Close() error {
	c.mu.Lock()
	c.closed = true
	subs := c.subs
	c.subs = nil
	c.mu.Unlock()
	for s := range subs {
		s.stop() // stop them all first, so they drain in parallel
	}
	for s := range subs {
		_ = s.Unsubscribe() // always nil
	}
	c.pub.close()
	return nil
}

// isClosed reports whether Close was called.
func (c *brokerClient) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// release frees a subscription id once its subscription is done.
func (c *brokerClient) release(id string) {
	c.mu.Lock()
	delete(c.ids, id)
	c.mu.Unlock()
}

// forget drops s from the live subscriptions.
func (c *brokerClient) forget(s *clientSubscription) {
	c.mu.Lock()
	delete(c.subs, s)
	c.mu.Unlock()
}

// fail turns a gRPC error into what the caller sees: the plugin's envelope with
// the broker sentinel restored, or a wrapped transport or context error.
func (c *brokerClient) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	err = hostError(c.name, err, brokerSentinel)
	var env *errors.Error
	if stderrors.As(err, &env) {
		return err
	}
	return fmt.Errorf("broker %s: %s: %w", c.name, op, err)
}

// brokerSentinel is the sentinel a broker envelope code stands for on the host.
func brokerSentinel(code int32) error {
	switch code {
	case http.StatusBadRequest:
		return broker.ErrInvalidTopic
	case http.StatusTooManyRequests:
		return broker.ErrSlowConsumer
	}
	return nil
}

// withTraceContext returns msg, or a copy of it whose header also carries the W3C
// trace context of ctx's outgoing metadata when msg's header has no Traceparent.
func withTraceContext(ctx context.Context, msg *broker.Message) *broker.Message {
	trace := metadata.MissingTraceContext(ctx, msg.Header)
	if trace == nil {
		return msg
	}
	h := make(map[string]string, len(msg.Header)+len(trace))
	maps.Copy(h, msg.Header)
	maps.Copy(h, trace)
	return &broker.Message{Header: h, Body: msg.Body}
}

// clientSubscription is one Subscribe on a plugin broker. It outlives the streams
// it runs over: run re-opens the stream whenever it breaks, until stopped.
type clientSubscription struct {
	c     *brokerClient
	topic string
	h     broker.Handler
	opts  broker.SubscribeOptions
	req   *pluginv1.SubscribeRequest

	ctx      context.Context // carries Subscribe's values; cancelled by Unsubscribe and Close
	cancel   context.CancelFunc
	slots    chan struct{}  // one per handler allowed to run at once
	handlers sync.WaitGroup // running handlers; Add is only called by run's goroutine
	done     chan struct{}  // closed when run has returned and every handler with it
	once     sync.Once
}

// Topic is the subscription pattern.
func (s *clientSubscription) Topic() string { return s.topic }

// Queue is the queue group name, "" for a plain subscription.
func (s *clientSubscription) Queue() string { return s.opts.Queue }

// Unsubscribe stops the subscription for good: handlers in flight see their
// context end and are waited for (their settlements still reach the plugin), the
// stream is closed, and it is never re-opened. It is idempotent. Like the memory
// broker's, it must not be called from the subscription's own handler.
func (s *clientSubscription) Unsubscribe() error {
	s.stop()
	<-s.done
	return nil
}

// stop starts stopping the subscription without waiting.
func (s *clientSubscription) stop() {
	s.once.Do(func() {
		s.c.forget(s)
		s.cancel()
	})
}

// finish frees the subscription's id for a new subscription and marks it done.
func (s *clientSubscription) finish() {
	s.c.release(s.opts.SubscriptionID)
	close(s.done)
}

// subStream is one Subscribe stream of a subscription.
type subStream struct {
	stream  pluginv1.Broker_SubscribeClient
	cancel  context.CancelFunc // ends the stream
	changed <-chan struct{}    // conn.Changed() as of just before the stream opened
	hctx    context.Context    // the handlers' context: ends with the stream or the subscription
	hcancel context.CancelFunc
	sendMu  sync.Mutex    // Settle messages come from concurrent handlers
	ended   chan struct{} // closed when the stream's receive loop ended
	drained chan struct{} // closed when Unsubscribe's drain of this stream finished

	mu      sync.Mutex
	closing bool           // set by drain: no new handler starts
	running sync.WaitGroup // this stream's handlers
}

// open opens a Subscribe stream and sends the SubscribeRequest; it returns once
// the plugin's subscription is live. waitCtx (and stopping the subscription)
// aborts the wait; changed is conn.Changed() taken before the connection was.
func (s *clientSubscription) open(waitCtx context.Context, changed <-chan struct{}) (*subStream, error) {
	cc, err := s.c.conn.Current()
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(s.ctx))
	stopWait := context.AfterFunc(waitCtx, cancel)
	stopSub := context.AfterFunc(s.ctx, cancel)
	stream, err := s.handshake(sctx, cc)
	waitLive, subLive := stopWait(), stopSub()
	switch {
	case err == nil && waitLive && subLive:
		hctx, hcancel := context.WithCancel(s.ctx)
		return &subStream{
			stream: stream, cancel: cancel, changed: changed, hctx: hctx, hcancel: hcancel,
			ended: make(chan struct{}), drained: make(chan struct{}),
		}, nil
	case !subLive:
		err = fmt.Errorf("broker %s: subscribe to %q: the subscription was stopped: %w", s.c.name, s.topic, broker.ErrClosed)
	case !waitLive:
		err = fmt.Errorf("broker %s: subscribe to %q: %w", s.c.name, s.topic, context.Cause(waitCtx))
	}
	cancel()
	return nil, err
}

// handshake opens the stream on cc, sends the SubscribeRequest and waits for the
// plugin's response headers, which it sends once subscribed.
func (s *clientSubscription) handshake(ctx context.Context, cc grpc.ClientConnInterface) (pluginv1.Broker_SubscribeClient, error) {
	op := fmt.Sprintf("subscribe to %q", s.topic)
	stream, err := pluginv1.NewBrokerClient(cc).Subscribe(ctx)
	if err != nil {
		return nil, s.c.fail(op, err)
	}
	err = stream.Send(&pluginv1.SubscribeClientMessage{Msg: &pluginv1.SubscribeClientMessage_Subscribe{Subscribe: s.req}})
	if err != nil && err != io.EOF { // io.EOF: the stream broke, and Recv below says why
		return nil, s.c.fail(op, err)
	}
	md, err := stream.Header()
	if err != nil {
		return nil, s.c.fail(op, err)
	}
	if md != nil {
		return stream, nil
	}
	// The stream ended before the subscription was live; Recv says why.
	if _, err = stream.Recv(); err == nil || err == io.EOF {
		err = errors.Unavailable(s.c.name, "plugin %s ended the subscribe stream before the subscription was live", s.c.name)
	}
	return nil, s.c.fail(op, err)
}

// run serves streams one after another until the subscription stops or the
// plugin is stopped for good, re-opening the stream after each break.
func (s *clientSubscription) run(st *subStream) {
	defer s.finish()
	defer s.handlers.Wait()
	for {
		s.serve(st)
		if st = s.reopen(st.changed); st == nil {
			return
		}
	}
}

// reopen waits for a restart (changed closing) or for the backoff, then tries to
// open a new stream, until one opens (nil when the subscription or the plugin
// stopped first). Attempts while the plugin is down fail fast with its 503.
func (s *clientSubscription) reopen(changed <-chan struct{}) *subStream {
	for attempt := 0; ; attempt++ {
		if s.ctx.Err() != nil || s.c.conn.Stopped() {
			return nil
		}
		t := time.NewTimer(resubscribeDelay(attempt))
		select {
		case <-s.ctx.Done():
		case <-changed:
		case <-t.C:
		}
		t.Stop()
		if s.ctx.Err() != nil || s.c.conn.Stopped() {
			return nil
		}
		changed = s.c.conn.Changed() // taken first, so a restart from now on cuts the next wait short
		if st, err := s.open(s.ctx, changed); err == nil {
			return st
		}
	}
}

// resubscribeDelay is the wait before re-open attempt n: base·2ⁿ, capped.
func resubscribeDelay(attempt int) time.Duration {
	if attempt < 16 {
		if d := resubscribeBackoffBase << attempt; d < resubscribeBackoffMax {
			return d
		}
	}
	return resubscribeBackoffMax
}

// serve receives deliveries until the stream ends, starting a handler for each as
// soon as a slot is free. The subscription stopping triggers drain, which closes
// the stream gracefully.
func (s *clientSubscription) serve(st *subStream) {
	stopDrain := context.AfterFunc(s.ctx, func() { s.drain(st) })
	for {
		p, err := st.stream.Recv()
		if err != nil {
			break
		}
		select {
		case s.slots <- struct{}{}:
		case <-st.hctx.Done():
			continue // stopping: left unsettled, the plugin nacks it when the stream ends
		}
		if !st.track() {
			<-s.slots
			continue
		}
		s.handlers.Add(1)
		go s.handle(st, p)
	}
	close(st.ended)
	st.hcancel() // handlers still running learn that their settlement will not count
	if !stopDrain() {
		<-st.drained
	}
	st.cancel()
}

// track counts a new handler on st, unless st is being drained.
func (st *subStream) track() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closing {
		return false
	}
	st.running.Add(1)
	return true
}

// drain closes st gracefully once the subscription stopped: it waits for st's
// handlers, so their settlements are sent, closes the host's side, and gives the
// plugin unsubscribeDrainTimeout to end the stream before cancelling it.
func (s *clientSubscription) drain(st *subStream) {
	defer close(st.drained)
	st.mu.Lock()
	st.closing = true
	st.mu.Unlock()
	st.running.Wait()
	st.sendMu.Lock()
	_ = st.stream.CloseSend() // an error means the stream is gone already
	st.sendMu.Unlock()
	t := time.NewTimer(unsubscribeDrainTimeout)
	defer t.Stop()
	select {
	case <-st.ended:
	case <-t.C:
	}
	st.cancel()
}

// handle runs the handler on one delivery and settles it.
func (s *clientSubscription) handle(st *subStream, p *pluginv1.Delivery) {
	defer s.handlers.Done()
	defer st.running.Done()
	defer func() { <-s.slots }()
	d := &clientDelivery{
		name:    s.c.name,
		st:      st,
		id:      p.GetId(),
		topic:   p.GetTopic(),
		msg:     *brokerMessageFromProto(p.GetMessage()),
		attempt: int(p.GetAttempt()),
	}
	md := make(metadata.MD, len(d.msg.Header))
	for k, v := range d.msg.Header {
		md[metadata.Canonical(k)] = v
	}
	err := s.call(metadata.NewIncomingContext(st.hctx, md), d)
	d.finish(s.opts.AutoAck, err)
}

// call runs the handler, turning a panic into an error so one bad message cannot
// crash the host; the delivery is then nacked like any failure.
func (s *clientSubscription) call(ctx context.Context, d *clientDelivery) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("broker %s: handler of %q panicked on %q: %v", s.c.name, s.topic, d.topic, r)
		}
	}()
	return s.h(ctx, d)
}

// clientDelivery is a delivery received from the plugin; settling it sends a
// Settle on the stream it came from.
type clientDelivery struct {
	name    string
	st      *subStream
	id      uint64
	topic   string
	msg     broker.Message
	attempt int
	settled broker.Settlement
}

// Topic is the concrete topic the message was published to.
func (d *clientDelivery) Topic() string { return d.topic }

// Message is this delivery's own copy of the message.
func (d *clientDelivery) Message() *broker.Message { return &d.msg }

// Attempt counts deliveries of this message to this subscription, from 1.
func (d *clientDelivery) Attempt() int { return d.attempt }

// Ack confirms the message. Acking twice is fine; acking after a Nack, or after
// the handler returned unsettled, fails with ErrAlreadySettled.
func (d *clientDelivery) Ack() error { return d.settled.Settle(true, d.sender("ack"), d.what("ack")) }

// Nack rejects the message so the plugin redelivers it. Nacking twice is fine;
// nacking after an Ack fails with ErrAlreadySettled.
func (d *clientDelivery) Nack() error {
	return d.settled.Settle(false, d.sender("nack"), d.what("nack"))
}

func (d *clientDelivery) what(verb string) string {
	return fmt.Sprintf("broker %s: %s message on %q (attempt %d)", d.name, verb, d.topic, d.attempt)
}

// sender is Settle's tell: the Settle goes to the plugin on d's stream.
func (d *clientDelivery) sender(verb string) func(ack bool) error {
	return func(ack bool) error { return d.send(ack, verb) }
}

// finish settles the delivery once its handler returned (see
// broker.Settlement.Finish); on a broken stream the plugin nacks it itself.
func (d *clientDelivery) finish(autoAck bool, err error) {
	d.settled.Finish(autoAck, err, d.sender("settle"))
}

// send writes the Settle for d on its stream.
func (d *clientDelivery) send(ack bool, verb string) error {
	d.st.sendMu.Lock()
	err := d.st.stream.Send(&pluginv1.SubscribeClientMessage{
		Msg: &pluginv1.SubscribeClientMessage_Settle{Settle: &pluginv1.Settle{DeliveryId: d.id, Ack: ack}},
	})
	d.st.sendMu.Unlock()
	if err != nil {
		return fmt.Errorf("broker %s: %s message on %q (attempt %d): the stream to the plugin broke, which leaves the message to the plugin to redeliver: %w",
			d.name, verb, d.topic, d.attempt, FromStatus(d.name, err))
	}
	return nil
}
