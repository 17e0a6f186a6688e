package plugin

import (
	"context"
	"encoding/json"
	stderrors "errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/microhost/micro/sdk/broker"
	"github.com/microhost/micro/sdk/errors"
	pluginv1 "github.com/microhost/micro/sdk/plugin/proto/micro/plugin/v1"
)

// maxPipelinedPublishes bounds the publishes one PublishStream runs at once.
const maxPipelinedPublishes = 64

// brokerServer serves a broker.Broker over protocol v1: the plugin side of the
// broker kind.
type brokerServer struct {
	pluginv1.UnimplementedBrokerServer
	b broker.Broker
}

// NewBrokerServer returns the gRPC service that exposes b to the host. Every
// error leaves through ToStatus (or, on PublishStream, as the JSON envelope of an
// ack); the broker's sentinels become envelopes with a fixed code
// (ErrInvalidTopic 400, ErrSlowConsumer 429, ErrClosed 503) so the host adapter
// can turn the first two back into the sentinels.
func NewBrokerServer(b broker.Broker) pluginv1.BrokerServer {
	return &brokerServer{b: b}
}

// Publish publishes one message; the host's deadline bounds any wait for room.
func (s *brokerServer) Publish(ctx context.Context, req *pluginv1.PublishRequest) (*pluginv1.Empty, error) {
	if err := s.b.Publish(ctx, req.GetTopic(), brokerMessageFromProto(req.GetMessage())); err != nil {
		return nil, ToStatus(s.envelope(err))
	}
	return &pluginv1.Empty{}, nil
}

// PublishStream publishes the batches it reads and acknowledges each message by
// id, the acks batched too; an ack carries the JSON error envelope when the
// publish failed. A broker that is a broker.BatchPublisher gets each batch whole,
// in order; any other broker runs up to maxPipelinedPublishes publishes at once,
// so acks may come out of order, but publishes to the same topic keep the order
// they were sent in. When the host closes its side, pending publishes finish and
// are acked before the stream ends.
func (s *brokerServer) PublishStream(stream pluginv1.Broker_PublishStreamServer) error {
	ctx := stream.Context()
	acks := newBatcher[publishOutcome]()
	stopAcks, acksDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(acksDone)
		// A failed Send means the stream is gone, which Recv reports.
		_, _ = acks.run(stopAcks, func(outs []publishOutcome) error {
			return stream.Send(ackBatch(outs))
		})
	}()
	ack := func(id uint64, err error) {
		out := publishOutcome{id: id}
		size := 10 // a packed id
		if err != nil {
			b, _ := json.Marshal(s.envelope(err))
			out.envelope = string(b)
			size += len(b) + batchItemOverhead
		}
		acks.push(out, size)
	}

	var publish func(*pluginv1.PublishBatch) error
	var wait func()
	if bp, ok := s.b.(broker.BatchPublisher); ok {
		publish, wait = s.batchPublisher(ctx, bp, ack)
	} else {
		publish, wait = s.pipelinedPublisher(ctx, ack)
	}
	defer func() {
		wait()
		close(stopAcks)
		<-acksDone
	}()
	for {
		batch, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := publish(batch); err != nil {
			return err
		}
	}
}

// publishOutcome is how one publish ended: its id and, when it failed, the JSON
// error envelope.
type publishOutcome struct {
	id       uint64
	envelope string
}

// ackBatch packs outcomes into one message: the ids of the successes, and an ack
// with its error for each failure.
func ackBatch(outs []publishOutcome) *pluginv1.PublishAckBatch {
	b := &pluginv1.PublishAckBatch{Ok: make([]uint64, 0, len(outs))}
	for _, o := range outs {
		if o.envelope == "" {
			b.Ok = append(b.Ok, o.id)
		} else {
			b.Acks = append(b.Acks, &pluginv1.PublishAck{Id: o.id, Error: o.envelope})
		}
	}
	return b
}

// maxBatchesInFlight bounds the batches a BatchPublisher has started whose
// outcomes are still awaited.
const maxBatchesInFlight = 16

// batchPublisher starts each batch whole, in order, on one goroutine, and waits
// for up to maxBatchesInFlight of them at once, acking each batch's messages when
// its outcomes are in; wait returns once every batch is acked.
func (s *brokerServer) batchPublisher(ctx context.Context, bp broker.BatchPublisher, ack func(uint64, error)) (publish func(*pluginv1.PublishBatch) error, wait func()) {
	queue := make(chan *pluginv1.PublishBatch, 4)
	slots := make(chan struct{}, maxBatchesInFlight)
	var waiting sync.WaitGroup
	done := make(chan struct{})
	go func() {
		defer close(done)
		for batch := range queue {
			reqs := batch.GetRequests()
			pubs := make([]broker.Publication, len(reqs))
			for i, r := range reqs {
				pubs[i] = broker.Publication{Topic: r.GetTopic(), Message: brokerMessageFromProto(r.GetMessage())}
			}
			slots <- struct{}{}
			bctx, cancel := batchContext(ctx, reqs)
			outcomes := bp.PublishBatch(bctx, pubs)
			waiting.Add(1)
			go func() {
				defer waiting.Done()
				defer func() { <-slots }()
				errs := outcomes()
				cancel()
				for i, r := range reqs {
					var err error
					if i < len(errs) {
						err = errs[i]
					} else {
						err = fmt.Errorf("broker %s: PublishBatch gave %d outcomes for %d messages", s.b.Name(), len(errs), len(reqs))
					}
					ack(r.GetId(), err)
				}
			}()
		}
		waiting.Wait()
	}()
	publish = func(batch *pluginv1.PublishBatch) error {
		select {
		case queue <- batch:
			return nil
		case <-ctx.Done():
			return ToStatus(context.Cause(ctx))
		}
	}
	wait = func() { close(queue); <-done }
	return publish, wait
}

// pipelinedPublisher runs each message's publish on its own goroutine, at most
// maxPipelinedPublishes at once and in order per topic.
func (s *brokerServer) pipelinedPublisher(ctx context.Context, ack func(uint64, error)) (publish func(*pluginv1.PublishBatch) error, wait func()) {
	var (
		wg    sync.WaitGroup
		slots = make(chan struct{}, maxPipelinedPublishes)
		order topicOrder
	)
	publish = func(batch *pluginv1.PublishBatch) error {
		for _, req := range batch.GetRequests() {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return ToStatus(context.Cause(ctx))
			}
			prev, done := order.next(req.GetTopic())
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				if prev != nil {
					<-prev // the previous publish to this topic has finished
				}
				pctx, cancel := batchContext(ctx, []*pluginv1.PublishRequest{req})
				err := s.b.Publish(pctx, req.GetTopic(), brokerMessageFromProto(req.GetMessage()))
				cancel()
				order.done(req.GetTopic(), done)
				ack(req.GetId(), err)
			}()
		}
		return nil
	}
	return publish, wg.Wait
}

// batchContext bounds publishing reqs by their publishers' deadlines: the
// latest of them, or none when any publisher has none.
func batchContext(ctx context.Context, reqs []*pluginv1.PublishRequest) (context.Context, context.CancelFunc) {
	var latest int64
	for _, r := range reqs {
		d := r.GetDeadlineUnixNano()
		if d == 0 {
			return ctx, func() {}
		}
		latest = max(latest, d)
	}
	return context.WithDeadline(ctx, time.Unix(0, latest))
}

// Subscribe subscribes to the broker for the host. The first message must be a
// SubscribeRequest; the plugin subscribes without AutoAck, sends its response
// headers once the subscription is live, then streams each delivery with a fresh
// id and settles it (Ack or Nack) when the host's Settle for that id arrives.
// When the stream ends it unsubscribes and nacks every delivery still unsettled.
func (s *brokerServer) Subscribe(stream pluginv1.Broker_SubscribeServer) error {
	first, err := stream.Recv()
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return err
	}
	req := first.GetSubscribe()
	if req == nil {
		return ToStatus(errors.BadRequest(s.b.Name(), "the first message of a Subscribe stream must be a SubscribeRequest, not %T", first.GetMsg()))
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	ss := &serverSubscription{ctx: ctx, stream: stream, pending: make(map[uint64]chan bool)}
	sub, err := s.b.Subscribe(ctx, req.GetTopic(), ss.handle, subscribeOptions(req)...)
	if err != nil {
		return ToStatus(s.envelope(err))
	}
	// The host ends the stream when it unsubscribes. A stream that breaks
	// instead (the host cancelled it, or the connection went) is subscribed
	// again: the subscription detaches, keeping what it holds on the server.
	unsubscribed := false
	defer func() {
		cancel() // handlers waiting for a Settle nack and return
		if d, ok := sub.(broker.Detacher); ok && !unsubscribed {
			_ = d.Detach()
			return
		}
		_ = sub.Unsubscribe()
	}()
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			unsubscribed = true
			return nil
		}
		if err != nil {
			return err
		}
		settle := msg.GetSettle()
		if settle == nil {
			return ToStatus(errors.BadRequest(s.b.Name(), "after the SubscribeRequest, a Subscribe stream carries only Settle messages, not %T", msg.GetMsg()))
		}
		ss.settle(settle.GetDeliveryId(), settle.GetAck())
	}
}

// envelope turns a broker error into the envelope the host receives.
func (s *brokerServer) envelope(err error) *errors.Error {
	return envelopeFor(s.b.Name(), err, brokerErrorCode)
}

// brokerErrorCode is the envelope code a broker sentinel crosses as (0: none).
func brokerErrorCode(err error) int32 {
	switch {
	case stderrors.Is(err, broker.ErrInvalidTopic):
		return http.StatusBadRequest
	case stderrors.Is(err, broker.ErrSlowConsumer):
		return http.StatusTooManyRequests
	case stderrors.Is(err, broker.ErrClosed):
		return http.StatusServiceUnavailable
	}
	return 0
}

// serverSubscription relays one broker subscription over one Subscribe stream.
type serverSubscription struct {
	ctx    context.Context // cancelled when the stream ends
	stream pluginv1.Broker_SubscribeServer
	sendMu sync.Mutex // handlers of a concurrent subscription send at once
	nextID atomic.Uint64

	mu      sync.Mutex
	pending map[uint64]chan bool // delivery id → where its Settle goes
}

// handle sends one delivery to the host and settles it as the host says; a
// delivery the host never settles (the stream ended, or the subscription stopped)
// is nacked, so the broker redelivers it.
func (s *serverSubscription) handle(ctx context.Context, d broker.Delivery) error {
	id := s.nextID.Add(1)
	settled := make(chan bool, 1)
	s.mu.Lock()
	s.pending[id] = settled
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pending, id)
		s.mu.Unlock()
	}()
	s.sendMu.Lock()
	err := s.stream.Send(&pluginv1.Delivery{
		Id:      id,
		Topic:   d.Topic(),
		Message: brokerMessageToProto(d.Message()),
		Attempt: saturatedInt32(d.Attempt()),
	})
	s.sendMu.Unlock()
	if err != nil {
		return d.Nack()
	}
	select {
	case ack := <-settled:
		if ack {
			return d.Ack()
		}
		return d.Nack()
	case <-s.ctx.Done():
		return d.Nack()
	case <-ctx.Done():
		return d.Nack()
	}
}

// settle hands the host's verdict to the handler waiting for delivery id; a
// Settle for an unknown or already settled id is ignored.
func (s *serverSubscription) settle(id uint64, ack bool) {
	s.mu.Lock()
	ch := s.pending[id]
	delete(s.pending, id)
	s.mu.Unlock()
	if ch != nil {
		ch <- ack // buffered, and removed above, so this never blocks
	}
}

// topicOrder chains the publishes of one PublishStream per topic, so pipelining
// never reorders messages sent to the same topic.
type topicOrder struct {
	mu   sync.Mutex
	last map[string]chan struct{} // topic → closed when its latest publish finishes
}

// next registers a publish to topic and returns the channel of the publish it must
// wait for (nil: none) and its own, to pass to done.
func (o *topicOrder) next(topic string) (prev <-chan struct{}, done chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.last == nil {
		o.last = make(map[string]chan struct{})
	}
	if p, ok := o.last[topic]; ok {
		prev = p
	}
	done = make(chan struct{})
	o.last[topic] = done
	return prev, done
}

// done marks the publish owning done as finished, forgetting the topic when no
// later publish to it is waiting.
func (o *topicOrder) done(topic string, done chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	close(done)
	if o.last[topic] == done {
		delete(o.last, topic)
	}
}
