package client

import (
	"context"
	stderrors "errors"

	"github.com/microhost/micro/sdk/codec"
	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/transport"
)

// Stream is the caller's side of a streaming call.
type Stream interface {
	// Send encodes and sends one message.
	Send(msg any) error
	// Recv decodes the next message into msg; io.EOF when the server finished, an
	// *errors.Error when it ended with an error.
	Recv(msg any) error
	// CloseSend tells the server no more messages follow.
	CloseSend() error
	// Close ends the stream.
	Close() error
}

// Stream opens a stream to service's streaming endpoint. For a server-stream
// endpoint, Send the request once, CloseSend, then Recv until io.EOF. The call's
// timeout, if set with WithTimeout, bounds the whole stream; the client default
// does not apply to streams. Close the stream when done with it.
func (c *Client) Stream(ctx context.Context, service, endpoint string, opts ...CallOption) (Stream, error) {
	co := callOptions{retries: c.opts.retries, codec: c.opts.codec}
	for _, opt := range opts {
		opt(&co)
	}
	cancel := context.CancelFunc(func() {})
	if co.timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, co.timeout)
	}
	md, _ := metadata.FromOutgoingContext(ctx)
	req := &Request{Service: service, Endpoint: endpoint, Header: md}
	header := c.header(ctx, req, &co)
	c.budget.deposit()

	var tried []string
	for attempt := 0; ; attempt++ {
		node, done, _, err := c.pick(ctx, service, &co, tried)
		if err != nil {
			cancel()
			return nil, err
		}
		conn, err := c.opts.transport.Dial(ctx, node.Address)
		if err == nil {
			var ts transport.Stream
			ts, err = conn.Stream(ctx, header)
			if err == nil {
				return &codecStream{s: ts, c: co.codec, service: service, done: func(err error) { done(err); cancel() }}, nil
			}
		}
		done(err)
		// Opening a stream sends nothing the server acts on, so any node may be
		// tried, unless the answer says no node would take it (a 4xx).
		var env *errors.Error
		refused := stderrors.As(err, &env) && !errors.Retryable(err) && !stderrors.Is(err, transport.ErrNotSent)
		if refused || attempt >= co.retries || ctx.Err() != nil || !c.budget.withdraw() {
			cancel()
			return nil, envelope(ctx, req, err)
		}
		tried = append(tried, node.ID)
		if sleep(ctx, c.opts.backoff(attempt+1)) != nil {
			cancel()
			return nil, envelope(ctx, req, err)
		}
	}
}

// codecStream encodes and decodes a stream's messages.
type codecStream struct {
	s       transport.Stream
	c       codec.Codec
	service string
	done    func(error)
	closed  bool
}

func (cs *codecStream) Send(msg any) error {
	b, err := cs.c.Marshal(msg)
	if err != nil {
		return errors.BadRequest(cs.service, "encoding a %s stream message: %v", cs.c.Name(), err)
	}
	return cs.s.Send(b)
}

func (cs *codecStream) Recv(msg any) error {
	b, err := cs.s.Recv()
	if err != nil {
		return err
	}
	if err := cs.c.Unmarshal(b, msg); err != nil {
		return errors.BadGateway(cs.service, "malformed %s stream message: %v", cs.c.Name(), err)
	}
	return nil
}

func (cs *codecStream) CloseSend() error { return cs.s.CloseSend() }

func (cs *codecStream) Close() error {
	err := cs.s.Close()
	if !cs.closed {
		cs.closed = true
		cs.done(nil)
	}
	return err
}
