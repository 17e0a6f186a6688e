package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/microhost/micro/sdk/broker"
	"github.com/microhost/micro/sdk/errors"
	pluginv1 "github.com/microhost/micro/sdk/plugin/proto/micro/plugin/v1"
)

// streamPublisher multiplexes concurrent publishes over one PublishStream: a
// writer goroutine sends what publishers queued as batches and a reader hands
// each ack back by id, so under load many publishes share one gRPC message each
// way. The stream is opened on first use and again after it broke or the plugin
// restarted; a broken stream fails the publishes waiting on it, and the next
// publish opens a new one.
type streamPublisher struct {
	name string
	conn Conn

	mu     sync.Mutex // guards cur and closed; held while a stream opens
	cur    *publishStream
	closed bool
}

// publishResult is what a waiting publish learns: the ack's error envelope as
// JSON ("" on success), or why the stream broke.
type publishResult struct {
	envelope string
	err      error
}

// publishStream is one open PublishStream and the publishes waiting for its acks.
type publishStream struct {
	stream  pluginv1.Broker_PublishStreamClient
	cancel  context.CancelFunc
	changed <-chan struct{} // conn.Changed() as of just before the stream opened
	out     *batcher[*pluginv1.PublishRequest]
	done    chan struct{} // closed when the receive loop has ended

	mu      sync.Mutex
	nextID  uint64
	waiters map[uint64]chan publishResult
	err     error // set once the stream broke
}

// publish queues one message on the shared stream and waits for its ack or ctx.
// ok is false when the message is too big for a batch: the caller publishes it
// with the unary call instead.
func (p *streamPublisher) publish(ctx context.Context, topic string, msg *pluginv1.Message) (ok bool, err error) {
	req := &pluginv1.PublishRequest{Topic: topic, Message: msg}
	if d, has := ctx.Deadline(); has {
		req.DeadlineUnixNano = d.UnixNano()
	}
	size, fits := batchSize(req, msg, len(topic)+8)
	if !fits {
		return false, nil
	}
	ps, err := p.stream(ctx)
	if err != nil {
		return true, err
	}
	res, err := ps.register(req)
	if err != nil {
		return true, err
	}
	if !ps.out.push(req, size) {
		// The writer is gone: the stream broke, and fail answers every waiter.
		<-ps.done
		return true, (<-res).err
	}
	select {
	case r := <-res:
		if r.err != nil {
			return true, r.err
		}
		if r.envelope == "" {
			return true, nil
		}
		env := &errors.Error{}
		if json.Unmarshal([]byte(r.envelope), env) != nil || env.Code == 0 {
			env = errors.Internal(p.name, "plugin %s acked a publish with an unreadable error: %q", p.name, r.envelope)
		}
		return true, hostError(p.name, env, brokerSentinel)
	case <-ctx.Done():
		ps.forget(req.GetId())
		return true, fmt.Errorf("broker %s: publish %q: %w", p.name, topic, context.Cause(ctx))
	}
}

// stream returns the live stream, opening one when there is none, the last one
// broke, or the plugin restarted since it opened. ctx aborts only the opening.
func (p *streamPublisher) stream(ctx context.Context) (*publishStream, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("broker %s: publish: %w", p.name, broker.ErrClosed)
	}
	if ps := p.cur; ps != nil {
		select {
		case <-ps.done: // broke
		case <-ps.changed: // the plugin restarted: its successor needs a new stream
			ps.cancel()
		default:
			return ps, nil
		}
		p.cur = nil
	}
	changed := p.conn.Changed()
	cc, err := p.conn.Current()
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, cancel)
	stream, err := pluginv1.NewBrokerClient(cc).PublishStream(sctx)
	if !stop() {
		cancel()
		return nil, fmt.Errorf("broker %s: publish: %w", p.name, context.Cause(ctx))
	}
	if err != nil {
		cancel()
		return nil, hostError(p.name, err, brokerSentinel)
	}
	ps := &publishStream{
		stream: stream, cancel: cancel, changed: changed,
		out:  newBatcher[*pluginv1.PublishRequest](),
		done: make(chan struct{}), waiters: make(map[uint64]chan publishResult),
	}
	go ps.write(sctx)
	go ps.receive(p.name)
	p.cur = ps
	return ps, nil
}

// close ends the stream, failing the publishes still waiting, and refuses new
// ones. It waits for the receive loop.
func (p *streamPublisher) close() {
	p.mu.Lock()
	p.closed = true
	ps := p.cur
	p.cur = nil
	p.mu.Unlock()
	if ps != nil {
		ps.cancel()
		<-ps.done
	}
}

// register gives req an id and returns the channel its ack goes to.
func (ps *publishStream) register(req *pluginv1.PublishRequest) (<-chan publishResult, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.err != nil {
		return nil, ps.err
	}
	ps.nextID++
	req.Id = ps.nextID
	ch := make(chan publishResult, 1)
	ps.waiters[ps.nextID] = ch
	return ch, nil
}

// forget drops the waiter of a publish that stopped waiting.
func (ps *publishStream) forget(id uint64) {
	ps.mu.Lock()
	delete(ps.waiters, id)
	ps.mu.Unlock()
}

// write is the writer goroutine: it sends the queued publishes as batches until
// the stream ends. A failed send breaks the stream: the receive loop then fails
// every publish still waiting, sent or not.
func (ps *publishStream) write(ctx context.Context) {
	if _, err := ps.out.run(ctx.Done(), func(reqs []*pluginv1.PublishRequest) error {
		return ps.stream.Send(&pluginv1.PublishBatch{Requests: reqs})
	}); err != nil {
		ps.cancel()
	}
}

// receive hands each ack to its waiter until the stream ends, then fails every
// publish still waiting with the reason.
func (ps *publishStream) receive(name string) {
	defer close(ps.done)
	for {
		batch, err := ps.stream.Recv()
		if err != nil {
			ps.out.take(true) // nothing more is queued; the writer may still hold some
			ps.fail(hostError(name, pluginStreamBroken(name, "publish", err), brokerSentinel))
			ps.cancel()
			return
		}
		ps.mu.Lock()
		for _, id := range batch.GetOk() {
			ps.settle(id, publishResult{})
		}
		for _, ack := range batch.GetAcks() {
			ps.settle(ack.GetId(), publishResult{envelope: ack.GetError()})
		}
		ps.mu.Unlock()
	}
}

// settle hands res to the publish waiting for id, if it still waits; ps.mu is
// held.
func (ps *publishStream) settle(id uint64, res publishResult) {
	if ch, ok := ps.waiters[id]; ok {
		delete(ps.waiters, id)
		ch <- res // buffered, and removed above: never blocks
	}
}

// fail records why the stream ended and fails every waiting publish with it.
func (ps *publishStream) fail(err error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.err = err
	for id, ch := range ps.waiters {
		ch <- publishResult{err: err}
		delete(ps.waiters, id)
	}
}
