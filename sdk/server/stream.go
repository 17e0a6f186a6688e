package server

import (
	"context"

	"github.com/microhost/micro/sdk/codec"
	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/transport"
)

// Stream is a streaming handler's side of a stream: typed messages encoded with
// the codec the caller chose.
type Stream interface {
	// Context ends when the caller goes away or the call's deadline passes.
	Context() context.Context
	// Send encodes and sends one message to the caller.
	Send(msg any) error
	// Recv decodes the caller's next message into msg; io.EOF when the caller
	// finished sending.
	Recv(msg any) error
}

// codecStream encodes and decodes messages over a transport stream.
type codecStream struct {
	ctx   context.Context
	c     codec.Codec
	s     transport.Stream
	owner string
}

func (cs *codecStream) Context() context.Context { return cs.ctx }

func (cs *codecStream) Send(msg any) error {
	b, err := cs.c.Marshal(msg)
	if err != nil {
		return errors.Internal(cs.owner, "encoding a %s stream message: %v", cs.c.Name(), err)
	}
	return cs.s.Send(b)
}

func (cs *codecStream) Recv(msg any) error {
	b, err := cs.s.Recv()
	if err != nil {
		return err
	}
	if err := cs.c.Unmarshal(b, msg); err != nil {
		return errors.BadRequest(cs.owner, "malformed %s stream message: %v", cs.c.Name(), err)
	}
	return nil
}

// ServeStream runs a streaming endpoint over s. For a server-stream endpoint the
// first message from the caller is the request.
func (s *Server) ServeStream(ctx context.Context, header map[string]string, ts transport.Stream) error {
	if s.tel != nil {
		return s.observeStream(ctx, header, ts)
	}
	return s.serveStream(ctx, header, ts)
}

func (s *Server) serveStream(ctx context.Context, header map[string]string, ts transport.Stream) error {
	md := metadata.MD(header)
	c, err := s.codecs.ForContentType(md[metadata.ContentType], nil)
	if err != nil {
		return err
	}
	endpoint := md[metadata.Endpoint]
	m, err := s.lookup(endpoint)
	if err != nil {
		return err
	}
	if m.kind == Unary {
		return errors.BadRequest(s.name, "%s is a unary endpoint: call it without a stream", endpoint)
	}
	ctx, cancel := withTimeout(ctx, md)
	defer cancel()
	ctx = metadata.NewIncomingContext(ctx, md)
	stream := &codecStream{ctx: ctx, c: c, s: ts, owner: s.name}
	req := &Request{Service: s.name, Endpoint: endpoint, Header: md, Stream: stream}
	if m.kind == ServerStream {
		in := newValue(m.reqType)
		if err := stream.Recv(in); err != nil {
			return errors.BadRequest(s.name, "%s needs its request as the first stream message: %v", endpoint, err)
		}
		req.Body = in
	}
	_, err = s.chain(ctx, req)
	return err
}
