package main

import (
	"context"
	stderrors "errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/coder/websocket"

	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/transport"
)

// clientSession is one WebSocket connection of a Conn's pool: dialed when a
// call first needs it, it carries many calls and streams at once, told apart by
// id, and ends for good with its connection.
type clientSession struct {
	c       *wsConn
	ready   chan struct{} // closed once dialing finished: then link or dialErr is set
	link    *link
	dialErr error

	load     int         // calls and streams on it; guarded by c.mu
	unusable atomic.Bool // ended, or the server is draining it: take nothing new

	mu      sync.Mutex
	nextID  uint64
	calls   map[uint64]chan callResult
	streams map[uint64]*clientStream
	ended   error // why the session ended; nothing is registered after
}

// callResult is the answer to one call.
type callResult struct {
	msg *transport.Message
	err error
}

func newClientSession(c *wsConn) *clientSession {
	return &clientSession{
		c:       c,
		ready:   make(chan struct{}),
		calls:   make(map[uint64]chan callResult),
		streams: make(map[uint64]*clientStream),
	}
}

// dial opens the WebSocket connection, then reads frames until it ends.
func (s *clientSession) dial() {
	ctx, cancel := context.WithTimeout(s.c.ctx, s.c.opts.dialTimeout)
	ws, _, err := websocket.Dial(ctx, "ws://"+s.c.addr+Path, &websocket.DialOptions{
		HTTPClient:      s.c.t.client,
		Subprotocols:    []string{subprotocol},
		CompressionMode: websocket.CompressionDisabled,
	})
	cancel()
	if err == nil && ws.Subprotocol() != subprotocol {
		_ = ws.CloseNow()
		err = fmt.Errorf("the server does not speak %s; is it a Microhost ws listener?", subprotocol)
	}
	if err != nil {
		s.dialErr = err
		s.unusable.Store(true)
		s.c.remove(s)
		close(s.ready)
		return
	}
	s.link = newLink(ws, s.c.opts.maxBodyBytes)
	s.c.opened.Add(1)
	close(s.ready)
	s.readLoop()
}

// close ends the session with a normal WebSocket close.
func (s *clientSession) close() {
	<-s.ready
	if s.link != nil {
		s.link.closeGracefully(websocket.StatusNormalClosure, "", errLinkClosed)
	}
}

// readLoop hands every frame to its call or stream until the connection ends.
func (s *clientSession) readLoop() {
	for {
		f, err := s.link.read()
		if err != nil {
			var big *oversizeError
			if stderrors.As(err, &big) && f != nil {
				s.oversize(f, big)
				continue
			}
			s.end(err)
			return
		}
		if err := s.handle(f); err != nil {
			s.end(err)
			return
		}
	}
}

// handle acts on one frame from the server.
func (s *clientSession) handle(f *frame) error {
	switch f.typ {
	case frameResponse:
		s.deliver(f.id, callResult{msg: &transport.Message{Header: f.header, Body: f.payload}})
	case frameRefused:
		s.unusable.Store(true) // the server drains this connection
		err := fmt.Errorf("%w: %w", transport.ErrNotSent, decodeEnvelope(f.payload))
		if !s.deliver(f.id, callResult{err: err}) {
			if st := s.forgetStream(f.id); st != nil {
				st.lost(err)
			}
		}
	case frameOpened:
		if st := s.stream(f.id); st != nil {
			st.isOpen = true
			signalOpen(st.open, nil)
		}
	case frameData:
		if st := s.stream(f.id); st != nil && !st.push(f.payload) {
			st.fail(errors.BadGateway("", "transport ws: %s sent past its stream window", s.c.addr))
		}
	case frameEnd, frameError:
		st := s.forgetStream(f.id)
		if st == nil {
			break
		}
		if f.typ == frameEnd {
			st.peerEnded(io.EOF)
			break
		}
		e := decodeEnvelope(f.payload)
		if !st.isOpen {
			signalOpen(st.open, e)
		}
		st.peerEnded(e)
	case frameWindow:
		if st := s.stream(f.id); st != nil {
			st.grant(f.payload)
		}
	default:
		return fmt.Errorf("%w: frame type %d from a server", errProtocol, f.typ)
	}
	return nil
}

// oversize fails the call or stream whose frame was over max_body_bytes; the
// connection carries on.
func (s *clientSession) oversize(f *frame, big *oversizeError) {
	e := errors.BadGateway("", "transport ws: %s from %s: %v; raise max_body_bytes", frameName(f.typ), s.c.addr, big)
	if s.deliver(f.id, callResult{err: e}) {
		return
	}
	if st := s.stream(f.id); st != nil {
		st.fail(e)
	}
}

func frameName(typ byte) string {
	switch typ {
	case frameResponse:
		return "response"
	case frameData:
		return "stream message"
	}
	return fmt.Sprintf("frame of type %d", typ)
}

// end fails every call and stream left on the session. A going-away close
// comes from a listener that finished draining: it answered everything it ran
// before closing, so what is left was not run and may be retried anywhere.
func (s *clientSession) end(readErr error) {
	s.link.close(readErr)
	s.unusable.Store(true)
	s.c.remove(s)
	cause := s.link.cause()
	var err error
	switch {
	case websocket.CloseStatus(readErr) == websocket.StatusGoingAway:
		err = fmt.Errorf("%w: %w", transport.ErrNotSent, errors.Unavailable("", "transport ws: %s shut down before answering; the call was not run", s.c.addr))
	case stderrors.Is(cause, errLinkClosed):
		err = fmt.Errorf("transport ws: the connection to %s was closed: %w", s.c.addr, transport.ErrClosed)
	default:
		err = fmt.Errorf("transport ws: connection to %s lost: %w", s.c.addr, readErr)
	}

	s.mu.Lock()
	s.ended = err
	calls, streams := s.calls, s.streams
	s.calls, s.streams = nil, nil
	s.mu.Unlock()
	for _, ch := range calls {
		ch <- callResult{err: err}
	}
	for _, st := range streams {
		st.lost(err)
	}
}

// register gives a new call or stream its id, unless the session ended.
func (s *clientSession) register(add func(id uint64)) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended != nil {
		return 0, fmt.Errorf("%w: %w", transport.ErrNotSent, errors.Unavailable("", "transport ws: the connection to %s ended: %v", s.c.addr, s.ended))
	}
	s.nextID++
	add(s.nextID)
	return s.nextID, nil
}

// deliver hands r to call id; false when no such call waits.
func (s *clientSession) deliver(id uint64, r callResult) bool {
	s.mu.Lock()
	ch, ok := s.calls[id]
	delete(s.calls, id)
	s.mu.Unlock()
	if ok {
		ch <- r
	}
	return ok
}

// forgetCall removes call id; false when its result was delivered already.
func (s *clientSession) forgetCall(id uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.calls[id]
	delete(s.calls, id)
	return ok
}

func (s *clientSession) stream(id uint64) *clientStream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams[id]
}

// forgetStream removes and returns stream id (nil when gone already).
func (s *clientSession) forgetStream(id uint64) *clientStream {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[id]
	delete(s.streams, id)
	return st
}

// cancel tells the server the caller gave up on id. It runs in its own
// goroutine: nobody waits for it.
func (s *clientSession) cancel(id uint64) {
	_, _ = s.link.send(s.link.ctx, &frame{typ: frameCancel, id: id})
}

// sendError explains a failed send of a call's request or a stream's open.
func (s *clientSession) sendError(ctx context.Context, sent bool, err error) error {
	var e *errors.Error
	switch {
	case sent:
		return fmt.Errorf("transport ws: sending to %s: %w", s.c.addr, err)
	case stderrors.As(err, &e):
		return e // the frame cannot carry it; retrying will not help
	case ctx.Err() != nil:
		return fmt.Errorf("%w: transport ws: waiting to send to %s: %w", transport.ErrNotSent, s.c.addr, ctx.Err())
	}
	return fmt.Errorf("%w: %w", transport.ErrNotSent, errors.Unavailable("", "transport ws: the connection to %s ended before the request was sent: %v", s.c.addr, err))
}

// call sends one request and waits for its response.
func (s *clientSession) call(ctx context.Context, req *transport.Message) (*transport.Message, error) {
	ch := make(chan callResult, 1)
	id, err := s.register(func(id uint64) { s.calls[id] = ch })
	if err != nil {
		return nil, err
	}
	sent, err := s.link.send(ctx, &frame{typ: frameRequest, id: id, header: req.Header, payload: req.Body})
	if err != nil {
		if !s.forgetCall(id) {
			<-ch // the session ended meanwhile and answered; the send error says more
		}
		return nil, s.sendError(ctx, sent, err)
	}
	select {
	case r := <-ch:
		return r.msg, r.err
	case <-ctx.Done():
	}
	if !s.forgetCall(id) {
		r := <-ch // answered at the last moment
		return r.msg, r.err
	}
	go s.cancel(id)
	return nil, fmt.Errorf("transport ws: call to %s: %w", s.c.addr, ctx.Err())
}

// openStream sends an open frame and waits for the server to run the stream.
func (s *clientSession) openStream(ctx context.Context, header map[string]string, release func()) (*clientStream, error) {
	st := &clientStream{s: s, ctx: ctx, open: make(chan error, 1), release: release}
	id, err := s.register(func(id uint64) {
		st.flow = newFlow(id, s.link)
		s.streams[id] = st
	})
	if err != nil {
		return nil, err
	}
	sent, err := s.link.send(ctx, &frame{typ: frameOpen, id: id, header: header})
	if err != nil {
		s.forgetStream(id)
		return nil, s.sendError(ctx, sent, err)
	}
	select {
	case err := <-st.open:
		if err != nil {
			s.forgetStream(id)
			return nil, err
		}
	case <-ctx.Done():
		if s.forgetStream(id) != nil {
			go s.cancel(id)
		}
		return nil, fmt.Errorf("transport ws: opening a stream to %s: %w", s.c.addr, ctx.Err())
	}
	st.stopMu.Lock()
	st.stop = context.AfterFunc(ctx, func() {
		st.abort(fmt.Errorf("transport ws: stream to %s: %w", s.c.addr, ctx.Err()))
	})
	st.stopMu.Unlock()
	return st, nil
}

// signalOpen answers a stream's wait for the server, once.
func signalOpen(ch chan error, err error) {
	select {
	case ch <- err:
	default:
	}
}

// clientStream is the caller's side of a stream.
type clientStream struct {
	*flow
	s       *clientSession
	ctx     context.Context // Stream's ctx: bounds writes; its end closes the stream
	open    chan error      // the server's answer to the open frame
	isOpen  bool            // frameOpened arrived; read loop only
	release func()          // frees the session for other calls

	sendMu     sync.Mutex // concurrent Sends are serialised
	sentClose  bool
	stopMu     sync.Mutex
	stop       func() bool // stops watching ctx
	finishOnce sync.Once
}

var _ transport.Stream = (*clientStream)(nil)

// errStreamClosed is what Recv and Send return after Close.
var errStreamClosed = stderrors.New("transport ws: stream closed")

// Send writes one message once the server's window allows it.
func (st *clientStream) Send(body []byte) error {
	st.sendMu.Lock()
	defer st.sendMu.Unlock()
	if st.sentClose {
		return fmt.Errorf("transport ws: Send after CloseSend")
	}
	if err := st.takeCredit(cost(body)); err != nil {
		return err
	}
	if _, err := st.s.link.send(st.ctx, &frame{typ: frameData, id: st.id, payload: body}); err != nil {
		return fmt.Errorf("transport ws: stream to %s: %w", st.s.c.addr, err)
	}
	return nil
}

// Recv returns the next message; io.EOF when the handler returned nil, its
// *errors.Error when it returned one.
func (st *clientStream) Recv() ([]byte, error) {
	b, err := st.recv()
	if err != nil {
		st.finish()
	}
	return b, err
}

// CloseSend tells the handler no more messages follow (its Recv returns io.EOF).
func (st *clientStream) CloseSend() error {
	st.sendMu.Lock()
	defer st.sendMu.Unlock()
	if st.sentClose {
		return nil
	}
	st.sentClose = true
	if _, err := st.s.link.send(st.ctx, &frame{typ: frameCloseSend, id: st.id}); err != nil {
		return fmt.Errorf("transport ws: stream to %s: %w", st.s.c.addr, err)
	}
	return nil
}

// Close ends the stream both ways; a handler still running sees its context
// cancelled.
func (st *clientStream) Close() error {
	st.abort(errStreamClosed)
	return nil
}

// abort ends the stream here and, if the handler still runs, cancels it.
func (st *clientStream) abort(err error) {
	st.endRecv(err, true)
	st.endSend(err)
	if st.s.forgetStream(st.id) != nil {
		go st.s.cancel(st.id)
	}
	st.finish()
}

// fail ends the stream with e (for Recv), cancelling the handler.
func (st *clientStream) fail(e error) {
	st.endRecv(e, true)
	st.endSend(e)
	if st.s.forgetStream(st.id) != nil {
		go st.s.cancel(st.id)
	}
}

// peerEnded records the handler's end: messages already here are still read,
// then Recv returns err; Send fails from now on.
func (st *clientStream) peerEnded(err error) {
	st.endRecv(err, false)
	st.endSend(err)
}

// lost ends a stream whose connection ended or whose open was refused.
func (st *clientStream) lost(err error) {
	signalOpen(st.open, err)
	st.endRecv(err, true)
	st.endSend(err)
}

// finish frees what the stream holds, once.
func (st *clientStream) finish() {
	st.finishOnce.Do(func() {
		st.stopMu.Lock()
		stop := st.stop
		st.stopMu.Unlock()
		if stop != nil {
			stop()
		}
		st.release()
	})
}
