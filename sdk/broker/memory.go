package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// Memory is the in-process broker: wildcard subscriptions, queue groups, explicit
// acknowledgement and bounded per-subscription buffers.
//
// Delivery: Publish hands a copy of the message to every matching plain
// subscription and to one member of every matching queue group, round robin,
// skipping members whose buffer is full. Each subscription has its own goroutines
// calling the handler, one at a time (in order) unless Concurrency says more.
//
// Acknowledgement: with AutoAck a nil handler return acks and an error (or a
// panic) nacks; without it the handler calls Ack or Nack, and a delivery left
// unsettled when the handler returns counts as nacked. A nacked message is
// redelivered with Attempt+1 ahead of fresh messages — for a queue group to the
// next member after the one that nacked — until MaxAttempts, after which it is
// dropped and reported to the error hook with ErrMaxAttempts.
//
// Backpressure: Publish only queues; it never runs a handler. A subscriber whose
// buffer is full does not get the message and Publish returns an error wrapping
// ErrSlowConsumer for it (errors.Join when several), while every subscriber with
// room still gets its copy: at-least-once to those with room, an error naming
// those without. When ctx has a deadline Publish first waits, up to that
// deadline, for room; without one it fails at once, so it never blocks forever.
// Nacked messages wait in a per-subscription retry list outside the Buffer, so
// redelivery never waits for room. Messages still queued at Unsubscribe or Close
// are discarded (a leaving queue group member hands them to the other members).
type Memory struct {
	onError func(topic string, err error)
	subs    sublist
	room    roomSignal

	mu     sync.Mutex // guards live and nextID; closed is set under it
	live   map[*subscription]struct{}
	nextID uint64
	closed atomic.Bool
	done   chan struct{} // closed by Close: wakes waiting publishers
	once   sync.Once
}

var _ Broker = (*Memory)(nil)

// MemoryOption configures NewMemory.
type MemoryOption func(*Memory)

// WithErrorHandler receives the messages the broker gives up on: those nacked on
// their last allowed attempt (the error wraps ErrMaxAttempts and the handler's
// error). It runs on the subscription's delivery goroutine, so keep it short.
// Without it such messages are dropped unreported; give one to log or count them.
func WithErrorHandler(fn func(topic string, err error)) MemoryOption {
	return func(m *Memory) {
		if fn != nil {
			m.onError = fn
		}
	}
}

// NewMemory returns a running memory broker; Close stops it.
func NewMemory(opts ...MemoryOption) *Memory {
	m := &Memory{
		onError: func(string, error) {},
		live:    make(map[*subscription]struct{}),
		done:    make(chan struct{}),
	}
	for _, opt := range opts {
		opt(m)
	}
	return m
}

// Name is "memory".
func (m *Memory) Name() string { return "memory" }

// Publish delivers a copy of msg to the subscribers of topic; see Memory for the
// delivery and backpressure rules. W3C trace context (Traceparent, Tracestate,
// Baggage) in ctx's outgoing metadata is copied into the header when the header
// has no Traceparent. Publishing to no subscriber at all is not an error.
func (m *Memory) Publish(ctx context.Context, topic string, msg *Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("broker: publish %q: %w", topic, err)
	}
	if err := ValidateTopic(topic); err != nil {
		return err
	}
	if msg == nil {
		return fmt.Errorf("broker: publish %q: the message is nil", topic)
	}
	if m.closed.Load() {
		return fmt.Errorf("broker: publish %q: %w", topic, ErrClosed)
	}
	subs := m.subs.match(topic)
	if len(subs.plain) == 0 && len(subs.groups) == 0 {
		return nil
	}
	p := newPayload(ctx, topic, msg)
	var blocked []target // allocated only when a subscriber is full
	reached := 0
	tally := func(r offerResult, t target) {
		switch r {
		case offered:
			reached++
		case full:
			blocked = append(blocked, t)
		}
	}
	for _, s := range subs.plain {
		tally(s.offer(p), target{s: s})
	}
	for _, g := range subs.groups {
		tally(offerGroup(g, p), target{g: g})
	}
	if len(blocked) == 0 {
		if reached == 0 && m.closed.Load() { // Close ran meanwhile and took every subscriber
			return fmt.Errorf("broker: publish %q: %w", topic, ErrClosed)
		}
		return nil
	}
	return m.waitForRoom(ctx, p, blocked)
}

// Subscribe registers h for topic, which may hold wildcards. ctx bounds only the
// call: the subscription lasts until Unsubscribe or Close, and handlers get a
// context carrying ctx's values, cancelled when the subscription stops.
func (m *Memory) Subscribe(ctx context.Context, topic string, h Handler, opts ...SubscribeOption) (Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("broker: subscribe to %q: %w", topic, err)
	}
	if err := ValidatePattern(topic); err != nil {
		return nil, err
	}
	s, err := newSubscription(ctx, m, topic, h, NewSubscribeOptions(opts...))
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if m.closed.Load() {
		m.mu.Unlock()
		s.cancel()
		return nil, fmt.Errorf("broker: subscribe to %q: %w", topic, ErrClosed)
	}
	m.nextID++
	s.id = m.nextID
	m.live[s] = struct{}{}
	m.subs.insert(s)
	s.start() // under m.mu, so a concurrent Close sees the workers it must wait for
	m.mu.Unlock()
	m.room.broadcast() // a new queue group member may be room for a waiting publisher
	return s, nil
}

// Close stops every subscription, waiting for the handlers in flight (their
// context is cancelled), wakes publishers waiting for room, and makes Publish and
// Subscribe fail with ErrClosed. It is idempotent. Like Unsubscribe, it must not
// be called from a handler.
func (m *Memory) Close() error {
	m.once.Do(m.shutdown)
	return nil
}

// shutdown is Close's body, run once.
func (m *Memory) shutdown() {
	m.mu.Lock()
	m.closed.Store(true)
	close(m.done)
	subs := make([]*subscription, 0, len(m.live))
	for s := range m.live {
		subs = append(subs, s)
	}
	m.mu.Unlock()
	for _, s := range subs {
		s.halt() // cancel every handler first, so they finish in parallel
	}
	for _, s := range subs {
		_ = s.Unsubscribe() // always nil
	}
}

// forget removes s from the live set.
func (m *Memory) forget(s *subscription) {
	m.mu.Lock()
	delete(m.live, s)
	m.mu.Unlock()
}

// redeliver schedules a nacked envelope again, or drops and reports it when it
// used its last attempt. For a plain subscription it goes back to the same
// subscription; for a queue group to the next member.
func (m *Memory) redeliver(from *subscription, e envelope, cause error) {
	if e.attempt >= from.opts.MaxAttempts {
		m.onError(e.p.topic, fmt.Errorf("broker: %s dropped a message on %q after %d attempts: %w: %w",
			from, e.p.topic, e.attempt, ErrMaxAttempts, cause))
		return
	}
	e.attempt++
	if from.group == nil {
		from.requeue(e) // fails only once unsubscribed: the message goes with it
		return
	}
	m.handOff(from.group, from, e)
}

// handOff requeues e on the member of g after prev (prev itself last), so a failing
// member does not get the message back while another can take it. Messages of a
// group left without members are dropped: every member unsubscribed.
func (m *Memory) handOff(g *group, prev *subscription, e envelope) {
	members := g.load()
	start := 0
	for i, s := range members {
		if s == prev {
			start = i + 1
			break
		}
	}
	for i := range members {
		if members[(start+i)%len(members)].requeue(e) {
			return
		}
	}
}

// offerGroup queues p on one member of g, round robin, skipping full members.
func offerGroup(g *group, p *payload) offerResult {
	members := g.load()
	if len(members) == 0 {
		return gone
	}
	result := gone
	start := g.next.Add(1) - 1
	for i := range uint64(len(members)) {
		switch members[(start+i)%uint64(len(members))].offer(p) {
		case offered:
			return offered
		case full:
			result = full
		}
	}
	return result
}

// target is a subscriber Publish could not reach: a plain subscription or a
// queue group whose members were all full.
type target struct {
	s *subscription
	g *group
}

// offer tries the target again.
func (t target) offer(p *payload) offerResult {
	if t.g != nil {
		return offerGroup(t.g, p)
	}
	return t.s.offer(p)
}

// waitForRoom retries the blocked targets while ctx has a deadline that has not
// passed, and returns one ErrSlowConsumer error per target still blocked.
func (m *Memory) waitForRoom(ctx context.Context, p *payload, blocked []target) error {
	if _, ok := ctx.Deadline(); !ok {
		return m.slowConsumers(p.topic, blocked, nil)
	}
	m.room.waiters.Add(1)
	defer m.room.waiters.Add(-1)
	for {
		room := m.room.current() // taken before retrying, so no wake-up is missed
		left := blocked[:0]
		for _, t := range blocked {
			if t.offer(p) == full {
				left = append(left, t)
			}
		}
		if blocked = left; len(blocked) == 0 {
			return nil
		}
		select {
		case <-room:
		case <-ctx.Done():
			return m.slowConsumers(p.topic, blocked, ctx.Err())
		case <-m.done:
			return fmt.Errorf("broker: publish %q: %w while waiting for a slow consumer", p.topic, ErrClosed)
		}
	}
}

// slowConsumers builds the error for the targets that did not get the message;
// waited is the context error when Publish waited for room until its deadline.
func (m *Memory) slowConsumers(topic string, blocked []target, waited error) error {
	errs := make([]error, 0, len(blocked))
	for _, t := range blocked {
		var err error
		if t.g == nil {
			err = fmt.Errorf("broker: publish %q: %s is full with %d undelivered messages (its Buffer): %w; subscribe with a larger Buffer or share the load in a queue group",
				topic, t.s, t.s.opts.Buffer, ErrSlowConsumer)
		} else {
			members := t.g.load()
			total := 0
			for _, s := range members {
				total += s.opts.Buffer
			}
			err = fmt.Errorf("broker: publish %q: all %d members of queue group %q on %q are full with %d undelivered messages (their Buffers): %w; add members or subscribe them with a larger Buffer",
				topic, len(members), t.g.name, t.g.pattern, total, ErrSlowConsumer)
		}
		if waited != nil {
			err = fmt.Errorf("%w (waited for room until: %w)", err, waited)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// roomSignal wakes publishers waiting for buffer room. Each broadcast closes the
// current channel and opens a new one; it costs nothing while nobody waits.
type roomSignal struct {
	waiters atomic.Int64
	mu      sync.Mutex
	ch      chan struct{}
}

// current returns the channel the next broadcast closes.
func (r *roomSignal) current() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ch == nil {
		r.ch = make(chan struct{})
	}
	return r.ch
}

// broadcast wakes every waiting publisher.
func (r *roomSignal) broadcast() {
	if r.waiters.Load() == 0 {
		return
	}
	r.mu.Lock()
	if r.ch != nil {
		close(r.ch)
		r.ch = nil
	}
	r.mu.Unlock()
}
