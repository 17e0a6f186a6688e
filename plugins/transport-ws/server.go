package main

import (
	"context"
	stderrors "errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/coder/websocket"

	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/transport"
)

// serverSession is one accepted WebSocket connection: its read loop hands each
// request to Handler.ServeRequest and each stream to Handler.ServeStream, each
// in its own goroutine, and routes stream frames to their streams.
type serverSession struct {
	l    *listener
	link *link

	mu      sync.Mutex
	calls   map[uint64]context.CancelFunc
	streams map[uint64]*serverStream
}

func newServerSession(l *listener, ws *websocket.Conn) *serverSession {
	return &serverSession{
		l:       l,
		link:    newLink(ws, l.opts.maxBodyBytes),
		calls:   make(map[uint64]context.CancelFunc),
		streams: make(map[uint64]*serverStream),
	}
}

// serve reads frames until the connection ends.
func (s *serverSession) serve() {
	for {
		f, err := s.link.read()
		if err != nil {
			var big *oversizeError
			if stderrors.As(err, &big) && f != nil {
				err = s.oversize(f, big)
			}
			if err != nil {
				s.end(err)
				return
			}
			continue
		}
		if err := s.handle(f); err != nil {
			s.end(err)
			return
		}
	}
}

// handle acts on one frame from the caller.
func (s *serverSession) handle(f *frame) error {
	switch f.typ {
	case frameRequest:
		return s.request(f)
	case frameOpen:
		return s.open(f)
	case frameData:
		if st := s.stream(f.id); st != nil && !st.push(f.payload) {
			st.fail(errors.BadRequest("", "transport ws: the caller sent past its stream window"))
		}
	case frameCloseSend:
		if st := s.stream(f.id); st != nil {
			st.endRecv(io.EOF, false)
		}
	case frameCancel:
		s.cancel(f.id)
	case frameWindow:
		if st := s.stream(f.id); st != nil {
			st.grant(f.payload)
		}
	default:
		return fmt.Errorf("%w: frame type %d from a caller", errProtocol, f.typ)
	}
	return nil
}

// oversize answers a frame whose header block or body was over the limit and
// skipped: 413 (431 for headers) to the call or stream, and the connection
// carries on.
func (s *serverSession) oversize(f *frame, big *oversizeError) error {
	var e *errors.Error
	if big.what == "body" {
		e = errors.PayloadTooLarge("", "transport ws: %v; send less or raise the transport's max_body_bytes", big)
	} else {
		e = errors.New("", http.StatusRequestHeaderFieldsTooLarge, "transport ws: %v; send fewer or shorter headers", big)
	}
	switch f.typ {
	case frameRequest:
		if !s.l.begin() {
			go s.refuse(f.id)
			return nil
		}
		go func() {
			defer s.l.done()
			s.respond(f.id, errorMessage(e))
		}()
	case frameOpen:
		if !s.l.begin() {
			go s.refuse(f.id)
			return nil
		}
		go func() {
			defer s.l.done()
			_, _ = s.link.send(s.link.ctx, &frame{typ: frameError, id: f.id, payload: encodeEnvelope(e)})
		}()
	case frameData:
		if st := s.stream(f.id); st != nil {
			st.fail(e)
		}
	default:
		return fmt.Errorf("%w: frame type %d: %v", errProtocol, f.typ, big)
	}
	return nil
}

// request runs one call in its own goroutine, or refuses it while draining.
func (s *serverSession) request(f *frame) error {
	if !s.l.begin() {
		go s.refuse(f.id)
		return nil
	}
	ctx, cancel := context.WithCancel(s.link.ctx)
	s.mu.Lock()
	if s.inUseLocked(f.id) {
		s.mu.Unlock()
		cancel()
		s.l.done()
		return fmt.Errorf("%w: id %d is in use", errProtocol, f.id)
	}
	s.calls[f.id] = cancel
	s.mu.Unlock()

	go func() {
		defer s.l.done()
		resp := s.serveRequest(ctx, &transport.Message{Header: f.header, Body: f.payload})
		s.mu.Lock()
		delete(s.calls, f.id)
		s.mu.Unlock()
		cancel()
		s.respond(f.id, resp)
	}()
	return nil
}

// serveRequest calls the handler; a panic or a nil answer becomes a 500.
func (s *serverSession) serveRequest(ctx context.Context, req *transport.Message) (resp *transport.Message) {
	defer func() {
		if r := recover(); r != nil {
			resp = errorMessage(errors.Internal("", "transport ws: the handler panicked: %v", r))
		}
	}()
	resp = s.l.h.ServeRequest(ctx, req)
	if resp == nil {
		resp = errorMessage(errors.Internal("", "transport ws: the handler returned no response"))
	}
	return resp
}

// respond sends a call's response; one the frame cannot carry becomes a 500.
func (s *serverSession) respond(id uint64, resp *transport.Message) {
	sent, err := s.link.send(s.link.ctx, &frame{typ: frameResponse, id: id, header: resp.Header, payload: resp.Body})
	if err != nil && !sent && s.link.ctx.Err() == nil {
		resp = errorMessage(errors.Internal("", "transport ws: the response cannot be sent: %v", err))
		_, _ = s.link.send(s.link.ctx, &frame{typ: frameResponse, id: id, header: resp.Header, payload: resp.Body})
	}
}

// refuse tells the caller a call or stream was not run because the listener is
// draining.
func (s *serverSession) refuse(id uint64) {
	e := errors.Unavailable("", "transport ws: %s is shutting down; call another instance", s.l.Addr())
	_, _ = s.link.send(s.link.ctx, &frame{typ: frameRefused, id: id, payload: encodeEnvelope(e)})
}

// open runs one stream in its own goroutine, or refuses it while draining.
func (s *serverSession) open(f *frame) error {
	if !s.l.begin() {
		go s.refuse(f.id)
		return nil
	}
	ctx, cancel := context.WithCancel(s.link.ctx)
	st := &serverStream{flow: newFlow(f.id, s.link), s: s, ctx: ctx, cancel: cancel}
	s.mu.Lock()
	if s.inUseLocked(f.id) {
		s.mu.Unlock()
		cancel()
		s.l.done()
		return fmt.Errorf("%w: id %d is in use", errProtocol, f.id)
	}
	s.streams[f.id] = st
	s.mu.Unlock()
	go st.run(f.header)
	return nil
}

func (s *serverSession) inUseLocked(id uint64) bool {
	_, call := s.calls[id]
	_, stream := s.streams[id]
	return call || stream
}

func (s *serverSession) stream(id uint64) *serverStream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams[id]
}

// cancel ends a call's context or a stream the caller gave up on.
func (s *serverSession) cancel(id uint64) {
	s.mu.Lock()
	cancelCall := s.calls[id]
	st := s.streams[id]
	s.mu.Unlock()
	if cancelCall != nil {
		cancelCall()
	}
	if st != nil {
		st.abort(errors.New("", errors.StatusClientClosed, "transport ws: the caller closed the stream"))
	}
}

// end closes the connection: handlers' contexts are cancelled and streams fail.
func (s *serverSession) end(err error) {
	s.link.close(err)
	cause := s.link.cause()
	if cause == nil {
		cause = err
	}
	lost := fmt.Errorf("transport ws: connection from the caller ended: %w", cause)
	s.mu.Lock()
	streams := make([]*serverStream, 0, len(s.streams))
	for _, st := range s.streams {
		streams = append(streams, st)
	}
	s.mu.Unlock()
	for _, st := range streams {
		st.abort(lost)
	}
}

// serverStream is the handler's side of a stream.
type serverStream struct {
	*flow
	s      *serverSession
	ctx    context.Context // the handler's; ends when the caller gives up
	cancel context.CancelFunc
	sendMu sync.Mutex  // concurrent Sends are serialised
	over   atomic.Bool // the caller has been told the stream ended, or gave up
}

var _ transport.Stream = (*serverStream)(nil)

// errStreamOver is what Send returns once the handler returned.
var errStreamOver = errors.New("", errors.StatusClientClosed, "transport ws: the stream already ended")

// run answers the open frame, runs the handler and ends the stream with its
// result.
func (st *serverStream) run(header map[string]string) {
	defer st.s.l.done()
	defer func() {
		st.s.mu.Lock()
		delete(st.s.streams, st.id)
		st.s.mu.Unlock()
		st.cancel()
	}()
	if _, err := st.s.link.send(st.s.link.ctx, &frame{typ: frameOpened, id: st.id}); err != nil {
		return
	}
	err := st.serve(header)
	st.endSend(errStreamOver)
	st.endRecv(errStreamOver, true)
	if !st.over.CompareAndSwap(false, true) {
		return
	}
	st.sendMu.Lock() // after a Send in progress
	defer st.sendMu.Unlock()
	end := &frame{typ: frameEnd, id: st.id}
	if err != nil {
		end = &frame{typ: frameError, id: st.id, payload: encodeEnvelope(err)}
	}
	_, _ = st.s.link.send(st.s.link.ctx, end)
}

// serve calls the handler; a panic becomes a 500.
func (st *serverStream) serve(header map[string]string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.Internal("", "transport ws: the stream handler panicked: %v", r)
		}
	}()
	return st.s.l.h.ServeStream(st.ctx, header, st)
}

// Send writes one message once the caller's window allows it.
func (st *serverStream) Send(body []byte) error {
	st.sendMu.Lock()
	defer st.sendMu.Unlock()
	if err := st.takeCredit(cost(body)); err != nil {
		return err
	}
	if _, err := st.s.link.send(st.s.link.ctx, &frame{typ: frameData, id: st.id, payload: body}); err != nil {
		return fmt.Errorf("transport ws: stream send: %w", err)
	}
	return nil
}

// Recv returns the caller's next message; io.EOF after its CloseSend.
func (st *serverStream) Recv() ([]byte, error) { return st.recv() }

// CloseSend does nothing on the server side: returning from the handler ends
// the stream.
func (st *serverStream) CloseSend() error { return nil }

// Close stops receiving; returning from the handler ends the stream.
func (st *serverStream) Close() error {
	st.endRecv(errStreamClosed, true)
	return nil
}

// abort ends the stream without telling the caller (it gave up, or the
// connection is gone).
func (st *serverStream) abort(err error) {
	if st.over.CompareAndSwap(false, true) {
		st.endRecv(err, true)
		st.endSend(err)
		st.cancel()
	}
}

// fail ends the stream with e for both the handler and the caller.
func (st *serverStream) fail(e *errors.Error) {
	if !st.over.CompareAndSwap(false, true) {
		return
	}
	st.endRecv(e, true)
	st.endSend(e)
	st.cancel()
	st.s.l.hold()
	go func() {
		defer st.s.l.done()
		_, _ = st.s.link.send(st.s.link.ctx, &frame{typ: frameError, id: st.id, payload: encodeEnvelope(e)})
	}()
}
