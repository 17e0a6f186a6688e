package plugin

import (
	"context"
	"encoding/json"
	stderrors "errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

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

// PublishStream publishes every request it reads and answers each with a
// PublishAck carrying its id and, on failure, the JSON error envelope. Up to
// maxPipelinedPublishes publishes run at once and are acked as each completes, so
// acks may come out of order; publishes to the same topic keep the order they
// were sent in. When the host closes its side, pending publishes finish and are
// acked before the stream ends.
func (s *brokerServer) PublishStream(stream pluginv1.Broker_PublishStreamServer) error {
	ctx := stream.Context()
	var (
		sendMu sync.Mutex // a stream has one writer at a time
		wg     sync.WaitGroup
		slots  = make(chan struct{}, maxPipelinedPublishes)
		order  topicOrder
	)
	defer wg.Wait()
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
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
			ack := &pluginv1.PublishAck{Id: req.GetId()}
			if err := s.b.Publish(ctx, req.GetTopic(), brokerMessageFromProto(req.GetMessage())); err != nil {
				b, _ := json.Marshal(s.envelope(err))
				ack.Error = string(b)
			}
			order.done(req.GetTopic(), done)
			sendMu.Lock()
			_ = stream.Send(ack) // fails only when the stream is gone, which Recv reports
			sendMu.Unlock()
		}()
	}
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
	defer func() {
		cancel() // handlers waiting for a Settle nack and return
		_ = sub.Unsubscribe()
	}()
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
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
