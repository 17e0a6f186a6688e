package main

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

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
	progress   *progress     // where a consumer made again starts; nil in core mode and for a queue group
	naks       heldNaks      // JetStream naks, held while the subscription leaves
	consumer   *jsConsumer   // what the JetStream consume loop reads; nil in core mode
	group      *groupFloor   // where a queue group's consumer made again starts; nil otherwise

	mu             sync.Mutex // guards the fields below and wg.Add
	stopped        bool
	consuming      jetstream.ConsumeContext // the JetStream consume loop; nil in core mode
	restoring      bool                     // restore is running
	restoreAgain   bool                     // a consume error came while restore ran: it runs once more
	restoreDeleted bool                     // ... and said the consumer was deleted
	wg             sync.WaitGroup           // handlers in flight, and restore

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

// startJetStream creates the subscription's durable consumer of the stream,
// filtered on the topic and delivering only messages stored from now on, or
// joins it when it exists: a queue group's, or a plain subscription's resumed
// under its SubscriptionID, which then delivers what was stored meanwhile and
// redelivers what was left unacked. Then it starts consuming it. A plain
// subscription tracks its progress through the stream, so a consumer the
// server deletes later is made again where the subscription left off.
func (s *subscription) startJetStream(ctx context.Context, js jetstream.JetStream, o options) error {
	if !coveredBy(s.topic, o.subjects) {
		return fmt.Errorf("broker nats: %s: the stream %s stores %v, which do not cover the topic, so nothing would arrive: add a matching subject to jetstream.subjects",
			s, o.stream, o.subjects)
	}
	s.maxDeliver = o.maxDeliver
	if s.opts.MaxAttempts > 0 {
		s.maxDeliver = s.opts.MaxAttempts
	}
	if s.opts.Queue == "" {
		s.progress = newProgress()
	} else {
		s.group = new(groupFloor)
	}
	c := &jsConsumer{js: js, o: o, cfg: jetstream.ConsumerConfig{
		Durable:           consumerName(s.topic, s.opts.Queue, s.opts.SubscriptionID),
		FilterSubject:     s.topic,
		AckPolicy:         jetstream.AckExplicitPolicy,
		DeliverPolicy:     jetstream.DeliverNewPolicy, // on first creation only: a resumed consumer keeps its place, consumeAgain picks one
		MaxDeliver:        s.maxDeliver,
		AckWait:           o.ackWait,
		InactiveThreshold: o.inactiveThreshold,
	}}
	if s.opts.Buffer > 0 {
		c.consumeOpts = append(c.consumeOpts, jetstream.PullMaxMessages(s.opts.Buffer))
	}
	c.consumeOpts = append(c.consumeOpts, jetstream.PullExpiry(pullExpiry), jetstream.PullHeartbeat(pullHeartbeat))
	c.consumeOpts = append(c.consumeOpts, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		s.consumeFailed(c, err)
	}))
	s.consumer = c
	cc, err := s.consume(ctx, c)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.consuming == nil {
		s.consuming, cc = cc, nil
	}
	s.mu.Unlock()
	if cc != nil { // the consumer was already deleted and made again under a new loop
		cc.Stop()
	}
	s.stop = func() {
		s.mu.Lock()
		cc := s.consuming
		s.mu.Unlock()
		// Drain, not Stop: the messages already fetched still reach dispatch,
		// which naks them, so the server redelivers them at once (to another
		// member, for a queue group) instead of after the ack wait. The naks
		// go once the drain is over (see heldNaks).
		cc.Drain()
		select {
		case <-cc.Closed():
		case <-time.After(o.timeout):
		}
		s.naks.release()
	}
	if s.opts.Queue == "" { // a queue group's consumer outlives its members; InactiveThreshold removes it
		s.cleanup = func() {
			if !js.Conn().IsConnected() { // left to InactiveThreshold
				return
			}
			dctx, cancel := context.WithTimeout(context.Background(), o.timeout)
			defer cancel()
			_ = js.DeleteConsumer(dctx, o.stream, c.cfg.Durable)
		}
	}
	return nil
}

// A consume loop's pull requests last pullExpiry, and the server sends a
// heartbeat every pullHeartbeat while one waits with no message: two missed
// heartbeats tell the loop its consumer is gone (deleted while no pull was
// waiting) within seconds, where the library's defaults take 30 s.
const (
	pullExpiry    = 10 * time.Second
	pullHeartbeat = 2 * time.Second
)

// jsConsumer is the durable consumer a JetStream subscription reads through,
// and what it takes to make and consume it again.
type jsConsumer struct {
	js          jetstream.JetStream
	o           options
	cfg         jetstream.ConsumerConfig
	consumeOpts []jetstream.PullConsumeOpt
}

// consume creates or updates c's consumer on the server and starts consuming
// it; a plain subscription's progress starts at the consumer's ack floor.
func (s *subscription) consume(ctx context.Context, c *jsConsumer) (jetstream.ConsumeContext, error) {
	cctx, cancel := context.WithTimeout(ctx, c.o.timeout)
	defer cancel()
	cons, err := c.js.CreateOrUpdateConsumer(cctx, c.o.stream, c.cfg)
	if err != nil {
		cons, err = s.keepStart(cctx, c, err)
	}
	if err != nil {
		return nil, s.createFailed(c, err)
	}
	info := cons.CachedInfo()
	if s.progress != nil {
		s.progress.begin(info.AckFloor.Stream, info.Delivered.Stream, info.NumAckPending)
	}
	if s.group != nil {
		s.group.saw(info.AckFloor.Stream)
	}
	return s.startConsuming(c, cons)
}

// keepStart retries a failed CreateOrUpdateConsumer when the consumer exists
// with another start (consumeAgain made it from a sequence) and the server
// refused to change that: where a consumer starts counts only when it is
// made, so the update keeps the existing start. Any other failure is returned
// as it is.
func (s *subscription) keepStart(ctx context.Context, c *jsConsumer, err error) (jetstream.Consumer, error) {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeConsumerCreate {
		return nil, err
	}
	existing, lerr := c.js.Consumer(ctx, c.o.stream, c.cfg.Durable)
	if lerr != nil {
		return nil, err
	}
	have := existing.CachedInfo().Config
	if have.DeliverPolicy == c.cfg.DeliverPolicy && have.OptStartSeq == c.cfg.OptStartSeq {
		return nil, err
	}
	cfg := c.cfg
	cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = have.DeliverPolicy, have.OptStartSeq, have.OptStartTime
	return c.js.CreateOrUpdateConsumer(ctx, c.o.stream, cfg)
}

// consumeAgain makes c's consumer again after the server deleted it and starts
// consuming it, so that what the stream stored while no consumer existed
// arrives too. A plain subscription's starts at the earliest message it has
// not handled. A queue group's consumer is shared by members, in other
// processes too, each seeing only its share of the messages: it starts just
// above the group's ack floor as this member last saw it (see groupFloor).
// When members make it at once, the first one's start holds.
func (s *subscription) consumeAgain(ctx context.Context, c *jsConsumer) (jetstream.ConsumeContext, error) {
	var start uint64
	switch {
	case s.progress != nil:
		start = s.progress.remake()
	case s.group != nil:
		start = s.group.seq.Load() + 1
	default:
		return s.consume(ctx, c)
	}
	cctx, cancel := context.WithTimeout(ctx, c.o.timeout)
	defer cancel()
	start, err := s.resumeAt(cctx, c, start)
	if err != nil {
		return nil, err
	}
	cfg := c.cfg
	cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start
	cons, err := c.js.CreateConsumer(cctx, c.o.stream, cfg)
	if errors.Is(err, jetstream.ErrConsumerExists) { // an earlier attempt, or another member, made it
		cons, err = c.js.Consumer(cctx, c.o.stream, cfg.Durable)
	}
	if err != nil {
		return nil, s.createFailed(c, err)
	}
	if s.group != nil {
		s.group.saw(cons.CachedInfo().AckFloor.Stream)
	}
	return s.startConsuming(c, cons)
}

// resumeAt is the stream sequence a consumer made again starts at, given the
// one the subscription would start at. A stream deleted and made anew numbers
// its messages from 1 again: then all it holds is new to the subscription, and
// it starts at the first.
func (s *subscription) resumeAt(ctx context.Context, c *jsConsumer, start uint64) (uint64, error) {
	st, err := c.js.Stream(ctx, c.o.stream)
	if err != nil {
		return 0, fmt.Errorf("broker nats: %s: look up stream %s: %w", s, c.o.stream, err)
	}
	state := st.CachedInfo().State
	if start > state.LastSeq+1 {
		start = max(state.FirstSeq, 1)
	}
	return start, nil
}

// createFailed explains why c's consumer could not be made.
func (s *subscription) createFailed(c *jsConsumer, err error) error {
	if !c.js.Conn().IsConnected() {
		return fmt.Errorf("broker nats: %s: create consumer %s on stream %s: %w (the connection to NATS is down; the client keeps reconnecting: is the server up?)",
			s, c.cfg.Durable, c.o.stream, err)
	}
	return fmt.Errorf("broker nats: %s: create consumer %s on stream %s: %w", s, c.cfg.Durable, c.o.stream, err)
}

// startConsuming starts a consume loop on cons feeding the subscription.
func (s *subscription) startConsuming(c *jsConsumer, cons jetstream.Consumer) (jetstream.ConsumeContext, error) {
	cc, err := cons.Consume(s.consumeJS, c.consumeOpts...)
	if err != nil {
		return nil, fmt.Errorf("broker nats: %s: consume %s: %w", s, c.cfg.Durable, err)
	}
	return cc, nil
}

// consumeFailed hears the consume loop's errors. When the server deletes the
// consumer (InactiveThreshold passed while the connection was away, or an
// operator deleted it), the loop ends, or its pulls go unanswered; restore then
// makes the consumer again rather than leave the subscription silent.
func (s *subscription) consumeFailed(c *jsConsumer, err error) {
	deleted := errors.Is(err, jetstream.ErrConsumerDeleted)
	if !deleted && !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, jetstream.ErrNoHeartbeat) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.stopped:
	case s.restoring:
		s.restoreAgain = true
		s.restoreDeleted = s.restoreDeleted || deleted
	default:
		s.restoring = true
		s.wg.Add(1)
		go s.restore(c, deleted)
	}
}

// restore runs restoreConsumer, again as long as consume errors came meanwhile.
func (s *subscription) restore(c *jsConsumer, deleted bool) {
	defer s.wg.Done()
	for {
		s.restoreConsumer(c, deleted)
		s.mu.Lock()
		again := s.restoreAgain && !s.stopped
		deleted = s.restoreDeleted
		s.restoreAgain, s.restoreDeleted, s.restoring = false, false, again
		s.mu.Unlock()
		if !again {
			return
		}
	}
}

// restoreConsumer re-creates c's consumer and consumes it in place of the
// current loop, retrying every reconnect wait until it succeeds or the
// subscription stops. Unless the server said the consumer was deleted, it
// first checks the consumer is really gone (an unanswered pull may have other
// causes) and leaves the loop alone when it is not. See consumeAgain for where
// the new consumer starts.
func (s *subscription) restoreConsumer(c *jsConsumer, deleted bool) {
	reported := false
	for {
		if s.ctx.Err() != nil {
			return
		}
		if !deleted {
			ctx, cancel := context.WithTimeout(s.ctx, c.o.timeout)
			_, err := c.js.Consumer(ctx, c.o.stream, c.cfg.Durable)
			cancel()
			if err == nil {
				return
			}
			// With its stream deleted, the consumer is gone too.
			deleted = errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound)
		}
		if deleted {
			// Not under s.ctx: Unsubscribe waits for this create to end before
			// it deletes the consumer, so the delete cannot overtake it on the
			// server and leave a consumer nobody reads.
			cc, err := s.consumeAgain(context.Background(), c)
			if err == nil {
				s.replaceConsuming(cc)
				return
			}
			if !reported && s.ctx.Err() == nil { // once a streak: the retries would repeat it
				reported = true
				s.b.onError(s.topic, fmt.Errorf("broker nats: %s receives nothing: its consumer is gone and making it again failed (retrying every %s; was the stream %s deleted?): %w",
					s, c.o.reconnectWait, c.o.stream, err))
			}
		}
		t := time.NewTimer(c.o.reconnectWait)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// replaceConsuming makes cc the consume loop and stops the one it replaces;
// once the subscription has stopped, it stops cc instead.
func (s *subscription) replaceConsuming(cc jetstream.ConsumeContext) {
	s.mu.Lock()
	if !s.stopped {
		cc, s.consuming = s.consuming, cc
	}
	s.mu.Unlock()
	if cc != nil { // nil: the first loop is not stored yet, and startJetStream stops it
		cc.Stop()
	}
}

// consumeJS turns one JetStream message into a delivery. One the subscription
// handled already (a consumer made again from an earlier message, or an ack
// the server never heard) is acked again instead.
func (s *subscription) consumeJS(m jetstream.Msg) {
	attempt := 1
	var seq uint64
	if meta, err := m.Metadata(); err == nil {
		if meta.NumDelivered > 0 {
			attempt = int(meta.NumDelivered)
		}
		if s.progress != nil {
			seq = meta.Sequence.Stream
		}
	}
	delivered := attempt // by this consumer
	if seq > 0 {
		var handle bool
		if attempt, handle = s.progress.deliver(seq, delivered); !handle {
			_ = m.Ack() // if lost, the server delivers it again and it comes here again
			return
		}
	}
	header, md := fromNATSHeader(m.Headers())
	d := &delivery{topic: m.Subject(), msg: broker.Message{Header: header, Body: m.Data()}, md: md, attempt: attempt, js: m, naks: &s.naks, seq: seq}
	// On its last attempt by the subscription's count, a message the server
	// would still deliver again (its consumer was made again and counts from
	// 1) is terminated when nacked, not redelivered.
	d.term = s.maxDeliver > 0 && attempt >= s.maxDeliver && delivered < s.maxDeliver
	s.dispatch(d, func() { _ = s.naks.nak(m) })
}

// maxConsumerName is the longest consumer name, in bytes, the server accepts.
const maxConsumerName = 255

// consumerName is the durable consumer of a subscription: after the queue
// group for a group (plus a hash of the topic, so one group name may serve
// several topics), after the subscription id for a plain subscription that has
// one (plus the same hash), so a re-subscription under that id resumes it, and
// unique otherwise. A name that had to be sanitized also gets a hash of itself,
// so "a.b" and "a_b" stay apart, and one too long for the server is cut short
// and gets a longer hash of itself.
func consumerName(topic, queue, subscriptionID string) string {
	switch {
	case queue != "":
		return boundedName("micro-queue-", queue, topic)
	case subscriptionID != "":
		return boundedName("micro-sub-", subscriptionID, topic)
	}
	return "micro-sub-" + nuid.Next()
}

// boundedName is prefix, then s fit for a consumer name, then a hash of topic,
// at most maxConsumerName bytes long.
func boundedName(prefix, s, topic string) string {
	suffix := fmt.Sprintf("-%08x", fnv32(topic))
	safe := safeName(s)
	if room := maxConsumerName - len(prefix) - len(suffix); len(safe) > room {
		hash := fmt.Sprintf("-%016x", fnv64(s))
		n := room - len(hash)
		for n > 0 && !utf8.RuneStart(safe[n]) {
			n--
		}
		safe = safe[:n] + hash
	}
	return prefix + safe + suffix
}

// safeName is s fit for a consumer name: sanitized, plus a hash of s when
// sanitizing changed it.
func safeName(s string) string {
	safe := sanitize(s)
	if safe != s {
		safe = fmt.Sprintf("%s-%08x", safe, fnv32(s))
	}
	return safe
}

// fnv32 is the FNV-1a hash of s.
func fnv32(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

// fnv64 is the 64-bit FNV-1a hash of s.
func fnv64(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
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
// is reported to the broker's error hook. One acked, or nacked on its last
// attempt, is handled for good as far as the subscription's progress goes.
func (s *subscription) run(d *delivery) {
	err := s.call(metadata.NewIncomingContext(s.ctx, d.md), d)
	nacked := d.finish(s.opts.AutoAck, err)
	last := s.maxDeliver > 0 && d.attempt >= s.maxDeliver
	if d.seq > 0 && (!nacked || last) {
		s.progress.settle(d.seq)
	}
	if s.group != nil && d.js != nil {
		s.lookAtGroupFloor()
	}
	if !nacked {
		return
	}
	switch {
	case d.js == nil:
		s.b.onError(d.topic, fmt.Errorf("broker nats: %s nacked a message on %q, which core NATS cannot redeliver (enable jetstream for at-least-once): %w",
			s, d.topic, errOrNack(err)))
	case last:
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
	s.end(false)
	return nil
}

// Detach is Unsubscribe, except that a plain JetStream subscription with a
// SubscriptionID keeps its consumer, so a subscription made again under that
// id resumes where this one stopped (InactiveThreshold removes it if none is).
// Without an id nothing could resume it, and it is deleted.
func (s *subscription) Detach() error {
	s.end(s.opts.SubscriptionID != "")
	return nil
}

// end stops the subscription once; keep leaves its consumer on the server.
func (s *subscription) end(keep bool) {
	s.once.Do(func() {
		s.mu.Lock()
		s.stopped = true
		s.mu.Unlock()
		if s.consumer != nil {
			s.naks.hold() // until the consume loop has drained, which releases them
		}
		s.cancel() // first: the handlers in flight end, so stop need not wait for them
		s.stop()
		s.wg.Wait()
		if !keep {
			s.cleanup()
		}
		s.b.forget(s)
	})
}
