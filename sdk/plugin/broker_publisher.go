package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/microhost/micro/sdk/broker"
	"github.com/microhost/micro/sdk/errors"
	pluginv1 "github.com/microhost/micro/sdk/plugin/proto/micro/plugin/v1"
)

// streamPublisher multiplexes concurrent publishes over one PublishStream, which
// costs a fraction of a unary call each. The stream is opened on first use and
// again after it broke or the plugin restarted; a broken stream fails the
// publishes waiting on it, and the next publish opens a new one.
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
	sendMu  sync.Mutex      // a stream has one writer at a time
	done    chan struct{}   // closed when the receive loop has ended

	mu      sync.Mutex
	nextID  uint64
	waiters map[uint64]chan publishResult
	err     error // set once the stream broke
}

// publish sends one message over the shared stream and waits for its ack or ctx.
func (p *streamPublisher) publish(ctx context.Context, topic string, msg *pluginv1.Message) error {
	ps, err := p.stream(ctx)
	if err != nil {
		return err
	}
	id, res, err := ps.register()
	if err != nil {
		return err
	}
	ps.sendMu.Lock()
	err = ps.stream.Send(&pluginv1.PublishRequest{Id: id, Topic: topic, Message: msg})
	ps.sendMu.Unlock()
	switch {
	case err == io.EOF:
		// The stream broke: the receive loop records why and fails every waiter.
		<-ps.done
		return (<-res).err
	case err != nil: // not sent (e.g. not marshalable); the stream lives on
		ps.forget(id)
		return hostError(p.name, err, brokerSentinel)
	}
	select {
	case r := <-res:
		if r.err != nil {
			return r.err
		}
		if r.envelope == "" {
			return nil
		}
		env := &errors.Error{}
		if json.Unmarshal([]byte(r.envelope), env) != nil || env.Code == 0 {
			env = errors.Internal(p.name, "plugin %s acked a publish with an unreadable error: %q", p.name, r.envelope)
		}
		return hostError(p.name, env, brokerSentinel)
	case <-ctx.Done():
		ps.forget(id)
		return fmt.Errorf("broker %s: publish %q: %w", p.name, topic, context.Cause(ctx))
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
		done: make(chan struct{}), waiters: make(map[uint64]chan publishResult),
	}
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

// register reserves an id and the channel its ack goes to.
func (ps *publishStream) register() (uint64, <-chan publishResult, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.err != nil {
		return 0, nil, ps.err
	}
	ps.nextID++
	ch := make(chan publishResult, 1)
	ps.waiters[ps.nextID] = ch
	return ps.nextID, ch, nil
}

// forget drops the waiter of a publish that stopped waiting.
func (ps *publishStream) forget(id uint64) {
	ps.mu.Lock()
	delete(ps.waiters, id)
	ps.mu.Unlock()
}

// receive hands each ack to its waiter until the stream ends, then fails every
// publish still waiting with the reason.
func (ps *publishStream) receive(name string) {
	defer close(ps.done)
	for {
		ack, err := ps.stream.Recv()
		if err != nil {
			ps.fail(hostError(name, pluginStreamBroken(name, "publish", err), brokerSentinel))
			ps.cancel()
			return
		}
		ps.mu.Lock()
		ch := ps.waiters[ack.GetId()]
		delete(ps.waiters, ack.GetId())
		ps.mu.Unlock()
		if ch != nil {
			ch <- publishResult{envelope: ack.GetError()} // buffered, and removed above: never blocks
		}
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
