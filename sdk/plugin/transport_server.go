package plugin

import (
	"context"
	"crypto/tls"
	stderrors "errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	grpcmd "google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/microhost/micro/sdk/errors"
	pluginv1 "github.com/microhost/micro/sdk/plugin/proto/micro/plugin/v1"
	"github.com/microhost/micro/sdk/transport"
)

// transportServer serves a transport.Transport to the host: the plugin side of
// the transport kind.
type transportServer struct {
	pluginv1.UnimplementedTransportServer
	t    transport.Transport
	data *dataServer // nil without a data path
}

// TransportServerOption tunes NewTransportServer.
type TransportServerOption func(*transportServer)

// WithDataPath offers the host a data path under cfg, the mutual-TLS server
// configuration of the plugin channel: unary calls and the requests of
// listeners then cross as compact binary frames on a loopback connection
// instead of gRPC messages. Serve turns it on for every transport plugin.
func WithDataPath(cfg *tls.Config) TransportServerOption {
	return func(s *transportServer) {
		if cfg != nil {
			s.data = newDataServer(s, cfg)
		}
	}
}

// NewTransportServer serves t over the Transport service. Listen binds a listener
// of t and forwards every request and stream it accepts to the host over the
// Listen stream (or, with WithDataPath, requests over the data path); Call,
// Calls and Stream dial through t on the host's behalf. The server it returns
// is also an io.Closer, which stops the data path.
func NewTransportServer(t transport.Transport, opts ...TransportServerOption) pluginv1.TransportServer {
	s := &transportServer{t: t}
	for _, opt := range opts {
		opt(s)
	}
	return s
}

// Close stops the data path, if any: its listener and connections.
func (s *transportServer) Close() error {
	if s.data == nil {
		return nil
	}
	return s.data.Close()
}

// DataPath answers where the data path listens, listening on the first call;
// without one it answers Unimplemented, as plugins built before it do.
func (s *transportServer) DataPath(ctx context.Context, req *pluginv1.DataPathRequest) (*pluginv1.DataPathResponse, error) {
	if s.data == nil {
		return nil, status.Error(codes.Unimplemented, "this plugin has no data path")
	}
	version := chooseDataPathVersion(req.GetVersions())
	if version == 0 {
		return &pluginv1.DataPathResponse{}, nil
	}
	network, addr, err := s.data.endpoint(version)
	if err != nil {
		return nil, ToStatus(errors.Unavailable("", "transport %s: %v", s.t.Name(), err))
	}
	return &pluginv1.DataPathResponse{Network: network, Address: addr, Version: version}, nil
}

// Listen binds the address of the host's first message, answers Bound, then
// serves until the host closes the stream (which closes the listener) or asks
// for a drain with ShutdownListener.
func (s *transportServer) Listen(stream pluginv1.Transport_ListenServer) error {
	first, err := stream.Recv()
	if err != nil {
		if err == io.EOF {
			return nil
		}
		return err
	}
	req := first.GetListen()
	if req == nil {
		return ToStatus(errors.BadRequest("", "transport %s: the first message on a Listen stream must be a ListenRequest", s.t.Name()))
	}
	ln, err := s.t.Listen(stream.Context(), req.GetAddress())
	if err != nil {
		return ToStatus(fmt.Errorf("transport %s: listen on %s: %w", s.t.Name(), req.GetAddress(), err))
	}
	var dc *dataServerConn
	if id := req.GetDataConn(); id != 0 && s.data != nil {
		dc = s.data.conn(id)
	}
	bound := &pluginv1.ListenerServerMessage{Msg: &pluginv1.ListenerServerMessage_Bound{Bound: &pluginv1.Bound{Address: ln.Addr(), Batch: true, Data: dc != nil}}}
	if err := stream.Send(bound); err != nil {
		ln.Close()
		return err
	}
	l := newServedListener(stream, ln, s.t.Name())
	if dc != nil {
		l.data, l.dataListener = dc, req.GetDataListener()
	} else if req.GetBatch() {
		l.reqs = newBatcher[*pluginv1.IncomingRequest]()
	}
	return l.run()
}

// Call dials the address through the transport and makes one call. Failures of
// the transport come back as envelopes: 503 only when the request was not sent,
// so the host may retry it anywhere.
func (s *transportServer) Call(ctx context.Context, req *pluginv1.CallRequest) (*pluginv1.Message, error) {
	out, err := s.call(ctx, req)
	if err != nil {
		return nil, ToStatus(err)
	}
	if n := proto.Size(out); n > wireLimit {
		return nil, ToStatus(errors.BadGateway("", "response from %s of %d bytes is over the plugin boundary's %d byte limit", req.GetAddress(), n, wireLimit))
	}
	return out, nil
}

// call makes one call of Call or Calls within its timeout; a failure is the
// envelope to answer with.
func (s *transportServer) call(ctx context.Context, req *pluginv1.CallRequest) (*pluginv1.Message, *errors.Error) {
	if ms := req.GetTimeoutMs(); ms > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
		defer cancel()
	}
	resp, failure := s.callMessage(ctx, req.GetAddress(), transportMessageFromProto(req.GetMessage()))
	if failure != nil {
		return nil, failure
	}
	return transportMessageToProto(resp), nil
}

// callMessage dials addr through the transport and makes one call; a failure is
// the envelope to answer with.
func (s *transportServer) callMessage(ctx context.Context, addr string, msg *transport.Message) (*transport.Message, *errors.Error) {
	conn, err := s.t.Dial(ctx, addr)
	if err != nil {
		return nil, errors.FromError(notSentFailure(fmt.Errorf("dialing %s: %w", addr, err)))
	}
	resp, err := conn.Call(ctx, msg)
	if err != nil {
		return nil, transportFailure(err)
	}
	return resp, nil
}

// Calls runs the calls of the host's batches concurrently, each as Call would,
// and answers with batches of results through one writer. When the host closes
// its side, the calls in flight finish and their results go out first.
func (s *transportServer) Calls(stream pluginv1.Transport_CallsServer) error {
	ctx := stream.Context()
	results := newBatcher[*pluginv1.CallResult]()
	done := make(chan struct{})
	written := make(chan error, 1)
	go func() {
		_, err := results.run(done, func(rs []*pluginv1.CallResult) error {
			return stream.Send(&pluginv1.CallResultBatch{Results: rs})
		})
		written <- err
	}()
	var wg sync.WaitGroup
	var running inFlight
	var err error
	for {
		var b *pluginv1.CallBatch
		if b, err = stream.Recv(); err != nil {
			break
		}
		for _, req := range b.GetCalls() {
			cctx := running.start(ctx, req.GetId())
			wg.Add(1)
			go func() {
				defer wg.Done()
				results.push(s.callResult(cctx, req))
				running.done(req.GetId())
			}()
		}
		for _, id := range b.GetGivenUp() {
			running.giveUp(id)
		}
	}
	wg.Wait() // a broken stream cancelled ctx, which ends the calls
	close(done)
	if werr := <-written; err == io.EOF {
		return werr
	}
	return nil
}

// callResult makes one call of a Calls stream.
func (s *transportServer) callResult(ctx context.Context, req *pluginv1.CallRequest) (*pluginv1.CallResult, int) {
	out, failure := s.call(ctx, req)
	if failure == nil {
		res := &pluginv1.CallResult{Id: req.GetId(), Message: out}
		if n, ok := batchSize(res, out, 0); ok {
			return res, n
		}
		failure = errors.BadGateway("", "response from %s of %d bytes is over the plugin boundary's %d byte limit", req.GetAddress(), proto.Size(out), wireLimit)
	}
	text := resultEnvelope(failure)
	return &pluginv1.CallResult{Id: req.GetId(), Error: text, NotSent: failure.Code == http.StatusServiceUnavailable}, len(text) + 32
}

// envelopeText is the JSON envelope of e, as ToStatus puts it in a status.
func envelopeText(e *errors.Error) string {
	return status.Convert(ToStatus(e)).Message()
}

// resultEnvelopeLimit bounds the envelope of a failed call's result, well
// within a frame or batch: the host refuses a bigger one as a broken peer,
// which would fail every other call on the connection.
const resultEnvelopeLimit = wireLimit / 4

// resultEnvelope is the envelope of a failed call for its result. A failure
// whose envelope is over resultEnvelopeLimit keeps its code, so a 503 still
// says the request was not sent, and the start of its detail.
func resultEnvelope(e *errors.Error) string {
	text := envelopeText(e)
	if len(text) <= resultEnvelopeLimit {
		return text
	}
	return envelopeText(errors.New(e.ID, e.Code, "%.4096s... (an error of %d bytes, cut short at the plugin boundary)", e.Detail, len(e.Detail)))
}

// Stream opens a stream to the address of the host's first frame, confirms it
// with the gRPC response header (so the host's Stream returns open failures
// itself), then relays data both ways: the host's data and close_send to the
// remote, the remote's messages back as data, then end or error.
func (s *transportServer) Stream(stream pluginv1.Transport_StreamServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		if err == io.EOF {
			return nil
		}
		return err
	}
	open := first.GetOpen()
	if open == nil {
		return ToStatus(errors.BadRequest("", "transport %s: the first frame of a Stream must be open", s.t.Name()))
	}
	conn, err := s.t.Dial(ctx, open.GetAddress())
	if err != nil {
		return ToStatus(notSentFailure(fmt.Errorf("dialing %s: %w", open.GetAddress(), err)))
	}
	remote, err := conn.Stream(ctx, open.GetHeader())
	if err != nil {
		return ToStatus(transportFailure(err))
	}
	defer remote.Close()
	if err := stream.SendHeader(grpcmd.MD{}); err != nil {
		return err
	}
	go relayHostFrames(stream, remote)
	for {
		body, err := remote.Recv()
		f, last := streamDataFrame(0, body), err != nil
		switch {
		case err == nil && frameTooLarge(body):
			f, last = streamErrorFrame(0, errors.BadGateway("", "stream message of %d bytes from %s is over the plugin boundary's %d byte limit", len(body), open.GetAddress(), wireLimit-frameOverhead)), true
		case err == io.EOF:
			f = streamEndFrame(0)
		case err != nil:
			f = streamErrorFrame(0, err)
		}
		if stream.Send(f) != nil || last {
			return nil
		}
	}
}

// relayHostFrames copies the host's frames of a Stream call to the remote stream
// until the host finishes or goes away; it ends with the call.
func relayHostFrames(stream pluginv1.Transport_StreamServer, remote transport.Stream) {
	for {
		f, err := stream.Recv()
		if err == io.EOF {
			_ = remote.CloseSend()
			return
		}
		if err != nil {
			_ = remote.Close()
			return
		}
		switch fr := f.GetFrame().(type) {
		case *pluginv1.StreamFrame_Data:
			if remote.Send(fr.Data) != nil {
				return
			}
		case *pluginv1.StreamFrame_CloseSend:
			_ = remote.CloseSend()
		case *pluginv1.StreamFrame_End, *pluginv1.StreamFrame_Error:
			_ = remote.Close()
			return
		}
	}
}

// notSentFailure marks a failure before anything was sent: a 503 wrapping
// transport.ErrNotSent.
func notSentFailure(err error) error {
	if !stderrors.Is(err, transport.ErrNotSent) {
		err = fmt.Errorf("%w: %w", transport.ErrNotSent, err)
	}
	return transportFailure(err)
}

// transportFailure is the envelope for a failed call or stream open. The host
// reads a 503 from Call or Stream as "not sent, retry anywhere", so a 503 is kept
// only for transport.ErrNotSent failures; any other failure that maps to 503
// becomes a 502, since the request may have reached the remote.
func transportFailure(err error) *errors.Error {
	e := errors.FromError(err)
	notSent := stderrors.Is(err, transport.ErrNotSent)
	switch {
	case notSent && e.Code != http.StatusServiceUnavailable:
		return errors.Unavailable(e.ID, "%s", err.Error())
	case !notSent && e.Code == http.StatusServiceUnavailable:
		return errors.BadGateway(e.ID, "%s", e.Detail)
	}
	return e
}

// servedListener is one Listen stream on the plugin side: the transport.Handler
// of the plugin's listener, which hands every request and stream to the host.
type servedListener struct {
	stream pluginv1.Transport_ListenServer
	ln     transport.Listener
	name   string
	ctx    context.Context // ends when the session stops
	cancel context.CancelFunc

	sendMu  sync.Mutex // serialises Send; after stop, nothing more is sent
	stopped bool
	reqs    *batcher[*pluginv1.IncomingRequest] // when the host reads IncomingBatch

	data         *dataServerConn // when requests go over the data path
	dataListener uint64          // the host's number for this listener there

	mu       sync.Mutex
	nextID   uint64
	pending  map[uint64]chan *pluginv1.Message
	streams  map[uint64]*streamQueue
	draining atomic.Bool
	drainWG  sync.WaitGroup
}

func newServedListener(stream pluginv1.Transport_ListenServer, ln transport.Listener, name string) *servedListener {
	ctx, cancel := context.WithCancel(stream.Context())
	return &servedListener{
		stream: stream, ln: ln, name: name, ctx: ctx, cancel: cancel,
		pending: make(map[uint64]chan *pluginv1.Message),
		streams: make(map[uint64]*streamQueue),
	}
}

// run serves until the host closes the stream, or until the listener stops on
// its own, which ends the RPC with an error so the host listens again.
func (l *servedListener) run() error {
	serveErr := make(chan error, 1)
	go func() { serveErr <- l.ln.Serve(l) }()
	recvErr := make(chan error, 1)
	go func() { recvErr <- l.recvLoop() }()
	written := make(chan struct{})
	if l.reqs != nil {
		go l.writeRequests(written)
	} else {
		close(written)
	}

	var dataGone <-chan struct{}
	if l.data != nil {
		dataGone = l.data.fc.done
	}
	var failed error
	select {
	case <-recvErr:
	case <-dataGone:
		// The host listens again, on a data path connection that works.
		failed = errors.Unavailable("", "transport %s: listener on %s: the data path connection to the host broke", l.name, l.ln.Addr())
	case err := <-serveErr:
		serveErr = nil
		switch {
		case err != nil:
			failed = fmt.Errorf("transport %s: listener on %s failed: %w", l.name, l.ln.Addr(), err)
		case !l.draining.Load():
			failed = errors.Unavailable("", "transport %s: listener on %s stopped serving", l.name, l.ln.Addr())
		default:
			<-recvErr // drained: wait for the host to close the stream
		}
	}
	l.stop()
	l.ln.Close()
	if serveErr != nil {
		<-serveErr
	}
	l.drainWG.Wait()
	<-written
	return ToStatus(failed)
}

// writeRequests is the writer of forwarded requests: it sends all that are
// pending as one IncomingBatch until the session stops; requests it could not
// send are answered with a 503.
func (l *servedListener) writeRequests(written chan<- struct{}) {
	defer close(written)
	unsent, err := l.reqs.run(l.ctx.Done(), func(rs []*pluginv1.IncomingRequest) error {
		rs, givenUp := splitGivenUp(rs)
		return l.send(&pluginv1.ListenerServerMessage{Msg: &pluginv1.ListenerServerMessage_Requests{Requests: &pluginv1.IncomingBatch{Requests: rs, GivenUp: givenUp}}})
	})
	for _, r := range unsent {
		if r.GetMessage() == nil {
			continue // a give-up: its caller is gone
		}
		resp := transportErrorMessage(errors.Unavailable("", "transport %s: cannot reach the host: %v", l.name, err))
		l.deliver(&pluginv1.Response{Id: r.GetId(), Message: transportMessageToProto(resp)})
	}
}

// recvLoop hands the host's messages to their requests and streams.
func (l *servedListener) recvLoop() error {
	for {
		m, err := l.stream.Recv()
		if err != nil {
			return err
		}
		switch msg := m.GetMsg().(type) {
		case *pluginv1.ListenerClientMessage_Response:
			l.deliver(msg.Response)
		case *pluginv1.ListenerClientMessage_Responses:
			for _, r := range msg.Responses.GetResponses() {
				l.deliver(r)
			}
		case *pluginv1.ListenerClientMessage_Stream:
			l.route(msg.Stream)
		case *pluginv1.ListenerClientMessage_Shutdown:
			l.drain(msg.Shutdown.GetDrainTimeoutMs())
		}
	}
}

// stop ends the session: nothing more is sent, waiting requests answer 503 and
// streams end with 503.
func (l *servedListener) stop() {
	l.cancel()
	l.sendMu.Lock()
	l.stopped = true
	l.sendMu.Unlock()
	l.mu.Lock()
	streams := l.streams
	l.streams = make(map[uint64]*streamQueue)
	l.mu.Unlock()
	for _, q := range streams {
		q.fail(errListenerGone("the host"), false)
	}
}

// drain shuts the listener down within the host's deadline (once), then answers
// shutdown_done.
func (l *servedListener) drain(timeoutMs int64) {
	if !l.draining.CompareAndSwap(false, true) {
		return
	}
	l.drainWG.Add(1)
	go func() {
		defer l.drainWG.Done()
		ctx, cancel := l.ctx, context.CancelFunc(func() {})
		if timeoutMs > 0 {
			ctx, cancel = context.WithTimeout(ctx, time.Duration(timeoutMs)*time.Millisecond)
		}
		defer cancel()
		_ = l.ln.Shutdown(ctx)
		_ = l.send(&pluginv1.ListenerServerMessage{Msg: &pluginv1.ListenerServerMessage_ShutdownDone{ShutdownDone: &pluginv1.Empty{}}})
	}()
}

func (l *servedListener) send(m *pluginv1.ListenerServerMessage) error {
	l.sendMu.Lock()
	defer l.sendMu.Unlock()
	if l.stopped {
		return errListenerGone("the host")
	}
	return l.stream.Send(m)
}

func (l *servedListener) sendFrame(f *pluginv1.StreamFrame) error {
	return l.send(&pluginv1.ListenerServerMessage{Msg: &pluginv1.ListenerServerMessage_Stream{Stream: f}})
}

// deliver hands a response to the request waiting for it; late answers (the
// caller gave up) are dropped.
func (l *servedListener) deliver(r *pluginv1.Response) {
	l.mu.Lock()
	ch := l.pending[r.GetId()]
	delete(l.pending, r.GetId())
	l.mu.Unlock()
	if ch != nil {
		ch <- r.GetMessage()
	}
}

// route queues a host frame for its stream; frames of finished streams are
// dropped. A stream whose caller reads too slowly fails rather than holding more.
func (l *servedListener) route(f *pluginv1.StreamFrame) {
	l.mu.Lock()
	q := l.streams[f.GetId()]
	l.mu.Unlock()
	if q != nil && !q.push(f) {
		q.fail(errors.Unavailable("", "transport %s: the caller of stream %d reads slower than the service sends; %d bytes are waiting", l.name, f.GetId(), streamQueueLimit), true)
	}
}

// ServeRequest forwards req to the host and waits for its response.
func (l *servedListener) ServeRequest(ctx context.Context, req *transport.Message) *transport.Message {
	if l.data != nil {
		return l.data.forward(ctx, l.ctx.Done(), l.name, l.dataListener, req)
	}
	ch := make(chan *pluginv1.Message, 1)
	l.mu.Lock()
	l.nextID++
	id := l.nextID
	l.pending[id] = ch
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.pending, id)
		l.mu.Unlock()
	}()

	in := &pluginv1.IncomingRequest{Id: id, Message: transportMessageToProto(req)}
	if l.reqs != nil {
		if n, ok := batchSize(in, in.GetMessage(), 0); !ok {
			return transportErrorMessage(errors.PayloadTooLarge("", "request of %d bytes is over the plugin boundary's %d byte limit; send less", n, wireLimit))
		} else if !l.reqs.push(in, n) {
			return transportErrorMessage(errors.Unavailable("", "transport %s: cannot reach the host: %v", l.name, errListenerGone("the host")))
		}
	} else {
		m := &pluginv1.ListenerServerMessage{Msg: &pluginv1.ListenerServerMessage_Request{Request: in}}
		if n := proto.Size(m); n > wireLimit {
			return transportErrorMessage(errors.PayloadTooLarge("", "request of %d bytes is over the plugin boundary's %d byte limit; send less", n, wireLimit))
		}
		if err := l.send(m); err != nil {
			return transportErrorMessage(errors.Unavailable("", "transport %s: cannot reach the host: %v", l.name, err))
		}
	}
	select {
	case resp := <-ch:
		return transportMessageFromProto(resp)
	case <-ctx.Done():
		if l.reqs != nil {
			// The host ends the handler's context (one from before given_up
			// ignores it); the request may still be in the same batch.
			l.reqs.push(&pluginv1.IncomingRequest{Id: id}, givenUpSize)
		}
		if stderrors.Is(ctx.Err(), context.DeadlineExceeded) {
			return transportErrorMessage(errors.Timeout("", "transport %s: the host did not answer in time", l.name))
		}
		return transportErrorMessage(errors.Unavailable("", "transport %s: the call was cancelled before the host answered", l.name))
	case <-l.ctx.Done():
		return transportErrorMessage(errListenerGone("the host"))
	}
}

// ServeStream forwards a stream to the host: open with the header, the caller's
// messages as data, then close_send or error; the host's data goes back to the
// caller until the host ends the stream with end or error.
func (l *servedListener) ServeStream(ctx context.Context, header map[string]string, s transport.Stream) error {
	q := newStreamQueue()
	l.mu.Lock()
	if l.ctx.Err() != nil {
		l.mu.Unlock()
		return errListenerGone("the host")
	}
	l.nextID++
	id := l.nextID
	l.streams[id] = q
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.streams, id)
		l.mu.Unlock()
	}()

	open := &pluginv1.StreamFrame{Id: id, Frame: &pluginv1.StreamFrame_Open{Open: &pluginv1.StreamOpen{Header: header}}}
	if err := l.sendFrame(open); err != nil {
		return err
	}
	done := make(chan struct{})
	defer close(done)
	go l.relayCaller(id, s, done)

	for {
		f, err := q.pop(ctx.Done())
		if err != nil {
			_ = l.sendFrame(streamErrorFrame(id, err))
			return err
		}
		if f == nil {
			gone := errors.New("", errors.StatusClientClosed, "the caller ended the stream")
			_ = l.sendFrame(streamErrorFrame(id, gone))
			return gone
		}
		switch fr := f.GetFrame().(type) {
		case *pluginv1.StreamFrame_Data:
			if err := s.Send(fr.Data); err != nil {
				_ = l.sendFrame(streamErrorFrame(id, err))
				return err
			}
		case *pluginv1.StreamFrame_CloseSend:
			_ = s.CloseSend()
		case *pluginv1.StreamFrame_End:
			return nil
		case *pluginv1.StreamFrame_Error:
			return streamErrorFromText(fr.Error)
		}
	}
}

// relayCaller sends the caller's messages of stream id to the host until the
// caller finishes or the stream ends (done), which the transport follows by
// failing Recv.
func (l *servedListener) relayCaller(id uint64, s transport.Stream, done <-chan struct{}) {
	for {
		body, err := s.Recv()
		select {
		case <-done:
			return
		default:
		}
		f, last := streamDataFrame(id, body), err != nil
		switch {
		case err == nil && frameTooLarge(body):
			f, last = streamErrorFrame(id, errFrameTooLarge(len(body))), true
		case err == io.EOF:
			f = streamCloseSendFrame(id)
		case err != nil:
			f = streamErrorFrame(id, err)
		}
		if l.sendFrame(f) != nil || last {
			return
		}
	}
}
