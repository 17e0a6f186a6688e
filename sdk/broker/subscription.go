package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/microhost/micro/sdk/metadata"
)

// Defaults applied by the memory broker to zero SubscribeOptions fields.
const (
	// DefaultBuffer is how many undelivered messages a subscription holds.
	DefaultBuffer = 1024
	// DefaultMaxAttempts is how many times one message may be delivered.
	DefaultMaxAttempts = 5
)

// subscription is one Subscribe call on the memory broker: a bounded queue of
// fresh messages, a retry list of nacked ones, and the goroutines calling the
// handler. The retry list is not bounded by Buffer: it only ever holds messages
// the subscription (or its queue group) already accepted, so a worker can
// requeue a nacked message without waiting for room, which could deadlock.
type subscription struct {
	m       *Memory
	id      uint64
	pattern string
	h       Handler
	opts    SubscribeOptions
	group   *group // set by sublist.insert; nil for a plain subscription

	ctx    context.Context // handlers' context: cancelled by Unsubscribe and Close
	cancel context.CancelFunc
	wake   chan struct{} // holds one pending wake-up for the workers
	stop   sync.Once
	wg     sync.WaitGroup // running workers

	mu     sync.Mutex
	closed bool
	queue  fifo // fresh messages, at most opts.Buffer of them
	retry  fifo // nacked messages, delivered before fresh ones
}

// offerResult says what became of a message offered to a subscription.
type offerResult int

const (
	offered offerResult = iota // queued
	full                       // the buffer is full: slow consumer
	gone                       // unsubscribed
)

// newSubscription applies the defaults to opts and checks them.
func newSubscription(ctx context.Context, m *Memory, pattern string, h Handler, opts SubscribeOptions) (*subscription, error) {
	switch {
	case h == nil:
		return nil, fmt.Errorf("broker: subscribe to %q: the handler is nil", pattern)
	case opts.Buffer < 0, opts.MaxAttempts < 0, opts.Concurrency < 0:
		return nil, fmt.Errorf("broker: subscribe to %q: Buffer (%d), MaxAttempts (%d) and Concurrency (%d) may not be negative; 0 means the default",
			pattern, opts.Buffer, opts.MaxAttempts, opts.Concurrency)
	}
	if opts.Buffer == 0 {
		opts.Buffer = DefaultBuffer
	}
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = 1
	}
	s := &subscription{m: m, pattern: pattern, h: h, opts: opts, wake: make(chan struct{}, 1)}
	// Handlers keep the values of the Subscribe context but not its cancellation:
	// the subscription lives until Unsubscribe or Close, not until ctx ends.
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	return s, nil
}

// Topic is the subscription pattern.
func (s *subscription) Topic() string { return s.pattern }

// Queue is the queue group name, "" for a plain subscription.
func (s *subscription) Queue() string { return s.opts.Queue }

// String names the subscription in errors.
func (s *subscription) String() string {
	if s.opts.Queue == "" {
		return fmt.Sprintf("subscription %d to %q", s.id, s.pattern)
	}
	return fmt.Sprintf("subscription %d to %q in queue group %q", s.id, s.pattern, s.opts.Queue)
}

// Unsubscribe stops delivery: it cancels the handlers' context, waits for the
// handlers in flight and discards the messages still queued — or, for a queue
// group member, hands them to the remaining members. It is idempotent. Calling
// it from the subscription's own handler deadlocks, as the handler would wait
// for itself; return from the handler and unsubscribe elsewhere.
func (s *subscription) Unsubscribe() error {
	s.stop.Do(s.shutdown)
	return nil
}

// start launches the delivery goroutines.
func (s *subscription) start() {
	for range s.opts.Concurrency {
		s.wg.Add(1)
		go s.run()
	}
}

// halt marks the subscription closed and cancels its handlers' context; it does
// not wait.
func (s *subscription) halt() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
}

// shutdown is Unsubscribe's body, run once.
func (s *subscription) shutdown() {
	s.m.subs.remove(s)
	s.m.forget(s)
	s.halt()
	s.wg.Wait()
	s.mu.Lock()
	left := s.queue.drain(s.retry.drain(nil))
	s.mu.Unlock()
	s.m.room.broadcast() // publishers waiting on this subscription give up on it
	if s.group != nil {
		for _, e := range left {
			s.m.handOff(s.group, s, e)
		}
	}
}

// offer queues a fresh message unless the buffer is full or s is closed.
func (s *subscription) offer(p *payload) offerResult {
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return gone
	case s.queue.len() >= s.opts.Buffer:
		s.mu.Unlock()
		return full
	}
	s.queue.push(envelope{p: p, attempt: 1})
	s.mu.Unlock()
	s.poke()
	return offered
}

// requeue adds a nacked message to the retry list; it never waits for room.
func (s *subscription) requeue(e envelope) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	s.retry.push(e)
	s.mu.Unlock()
	s.poke()
	return true
}

// poke wakes a worker without blocking.
func (s *subscription) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run is one delivery goroutine; it returns when the subscription stops.
func (s *subscription) run() {
	defer s.wg.Done()
	for {
		e, ok := s.next()
		if !ok {
			return
		}
		s.deliver(e)
	}
}

// next blocks until a message is ready, retries first, or the subscription stops.
func (s *subscription) next() (envelope, bool) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return envelope{}, false
		}
		e, ok := s.retry.pop()
		wasFull := false
		if !ok {
			wasFull = s.queue.len() >= s.opts.Buffer
			e, ok = s.queue.pop()
		}
		more := s.retry.len()+s.queue.len() > 0
		s.mu.Unlock()
		if ok {
			if wasFull {
				s.m.room.broadcast()
			}
			if more && s.opts.Concurrency > 1 {
				s.poke() // let another worker take the next one
			}
			return e, true
		}
		select {
		case <-s.wake:
		case <-s.ctx.Done():
		}
	}
}

// deliver calls the handler with a private copy of the message, then acks or
// redelivers it.
func (s *subscription) deliver(e envelope) {
	d := newDelivery(e)
	err := s.call(metadata.NewIncomingContext(s.ctx, d.md), d)
	if d.finish(s.opts.AutoAck, err) {
		return
	}
	if err == nil {
		if d.settled.Expired() {
			err = errors.New("the handler returned without Ack or Nack")
		} else {
			err = errors.New("the handler nacked it")
		}
	}
	s.m.redeliver(s, e, err)
}

// call runs the handler, turning a panic into an error so one bad message
// cannot crash the process; the message is then nacked like any failure.
func (s *subscription) call(ctx context.Context, d *delivery) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("broker: handler of %s panicked on %q: %v", s, d.topic, r)
		}
	}()
	return s.h(ctx, d)
}
