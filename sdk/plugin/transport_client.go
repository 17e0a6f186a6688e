package plugin

import (
	"context"
	"encoding/json"
	stderrors "errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/microhost/micro/sdk/errors"
	pluginv1 "github.com/microhost/micro/sdk/plugin/proto/micro/plugin/v1"
	"github.com/microhost/micro/sdk/transport"
)

// Re-listening after a broken Listen stream: the wait between tries grows from
// relistenMinWait to relistenMaxWait; a restart of the plugin (conn.Changed)
// wakes it at once. Each try may take relistenBindTimeout to be bound.
const (
	relistenMinWait     = 100 * time.Millisecond
	relistenMaxWait     = 5 * time.Second
	relistenBindTimeout = 10 * time.Second
)

// transportClient is transport.Transport over a transport plugin's gRPC
// connection: the host side of the transport kind.
type transportClient struct {
	name   string
	conn   Conn
	closed atomic.Bool
	// background bounds work nobody waits for (connecting the data path);
	// Close cancels it.
	background context.Context
	stop       context.CancelFunc
	unary      atomic.Bool // the plugin does not serve Calls: each call is a Call RPC

	callsMu sync.Mutex
	calls   *callStream // the shared Calls stream, nil until a call opens it

	dataMu      sync.Mutex
	data        *dataClient     // the data path connection, nil until one is open
	dataDialing chan struct{}   // closed when the attempt to connect ends; nil when none runs
	dataFailed  bool            // the last attempt failed: see dataOff and dataRetry
	dataOff     <-chan struct{} // after a failure: closed when the plugin restarts
	dataRetry   time.Time       // after a failure: zero waits for a restart, else no attempt before it
	dataWait    time.Duration   // the wait after the last failed attempt
}

var _ transport.Transport = (*transportClient)(nil)

// NewTransportClient returns the transport served by the plugin behind conn,
// named name. Its listeners live in the plugin and survive plugin restarts: when
// the Listen stream breaks they listen again on the same address, by themselves.
// Calls fail fast with a 503 wrapping transport.ErrNotSent while the plugin is
// down, so clients retry elsewhere.
func NewTransportClient(name string, conn Conn) transport.Transport {
	background, stop := context.WithCancel(context.Background())
	return &transportClient{name: name, conn: conn, background: background, stop: stop}
}

// Name is the name the host gave the plugin.
func (t *transportClient) Name() string { return t.name }

// Listen has the plugin bind addr and returns the listener; ctx bounds the bind
// only, the listener lives until Close.
func (t *transportClient) Listen(ctx context.Context, addr string) (transport.Listener, error) {
	if t.closed.Load() {
		return nil, transport.ErrClosed
	}
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l := &pluginListener{t: t, ctx: lctx, cancel: cancel}
	sess, err := l.open(ctx, addr)
	if err != nil {
		cancel()
		return nil, err
	}
	l.addr, l.cur = sess.bound, sess
	return l, nil
}

// Dial returns a connection to addr through the plugin; it does no I/O.
func (t *transportClient) Dial(_ context.Context, addr string) (transport.Conn, error) {
	if t.closed.Load() {
		return nil, transport.ErrClosed
	}
	return &pluginConn{t: t, addr: addr}, nil
}

// Close makes Listen and Dial fail with transport.ErrClosed; listeners already
// returned stay up until their own Close, as with the built-in http transport.
func (t *transportClient) Close() error {
	t.closed.Store(true)
	t.stop()
	t.callsMu.Lock()
	cs := t.calls
	t.calls = nil
	t.callsMu.Unlock()
	if cs != nil {
		cs.retire()
	}
	t.dataMu.Lock()
	dc := t.data
	t.data = nil
	t.dataMu.Unlock()
	if dc != nil {
		dc.retire()
	}
	return nil
}

// fail turns a failed RPC into the caller's error: the caller's own context
// error as such (also when the plugin saw the caller's deadline pass first); the
// plugin's envelope, a 503 wrapped with transport.ErrNotSent since the plugin
// answers 503 only for requests it did not send; or FromStatus's Unavailable for
// a broken connection, which is not marked ErrNotSent (the request may have left).
func (t *transportClient) fail(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("transport %s: %s: %w", t.name, op, ctxErr)
	}
	if _, ok := ctx.Deadline(); ok && timedOut(err) {
		// The plugin works to the caller's deadline and may see it pass first.
		return fmt.Errorf("transport %s: %s: %w", t.name, op, context.DeadlineExceeded)
	}
	var own *errors.Error
	if stderrors.As(err, &own) {
		return err
	}
	if env, ok := statusEnvelope(err); ok && env.Code == http.StatusServiceUnavailable {
		return fmt.Errorf("%w: %w", transport.ErrNotSent, env)
	}
	err = FromStatus(t.name, err)
	var env *errors.Error
	if stderrors.As(err, &env) {
		return err
	}
	return fmt.Errorf("transport %s: %s: %w", t.name, op, err)
}

// current returns a stub over the live connection, or conn's 503 error wrapped
// with transport.ErrNotSent.
func (t *transportClient) current() (pluginv1.TransportClient, error) {
	cc, err := t.conn.Current()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", transport.ErrNotSent, errors.FromError(err))
	}
	return pluginv1.NewTransportClient(cc), nil
}

// timedOut reports whether a failed RPC ran out of time in the plugin.
func timedOut(err error) bool {
	if env, ok := statusEnvelope(err); ok {
		return env.Code == http.StatusGatewayTimeout
	}
	return status.Code(err) == codes.DeadlineExceeded
}

// statusEnvelope returns the envelope a plugin put in a gRPC status, if any.
func statusEnvelope(err error) (*errors.Error, bool) {
	st, ok := status.FromError(err)
	if !ok {
		return nil, false
	}
	var e errors.Error
	if json.Unmarshal([]byte(st.Message()), &e) != nil || e.Code == 0 {
		return nil, false
	}
	return &e, true
}

// pluginConn calls one address through the plugin.
type pluginConn struct {
	t    *transportClient
	addr string
}

// Call sends req through the plugin's transport. A 503 error wraps
// transport.ErrNotSent: the request never left (the plugin is down, or its
// transport could not send it).
func (c *pluginConn) Call(ctx context.Context, req *transport.Message) (*transport.Message, error) {
	if _, err := c.t.conn.Current(); err != nil {
		return nil, fmt.Errorf("%w: %w", transport.ErrNotSent, errors.FromError(err))
	}
	if dc := c.t.dataPath(); dc != nil {
		return dc.call(ctx, c.addr, req)
	}
	// The Calls stream marshals queued calls on its own goroutine, maybe after
	// this caller gave up: the header is copied, since callers may change
	// theirs once Call returns (a retry does).
	msg := transportMessageToProto(req)
	msg.Header = maps.Clone(msg.Header)
	creq := &pluginv1.CallRequest{Address: c.addr, Message: msg}
	if dl, ok := ctx.Deadline(); ok {
		creq.TimeoutMs = max(1, time.Until(dl).Milliseconds())
	}
	size, ok := batchSize(creq, creq.GetMessage(), len(c.addr))
	if !ok {
		return nil, errors.PayloadTooLarge("", "request of %d bytes is over the plugin boundary's %d byte limit; send less", size, wireLimit)
	}
	if c.t.unary.Load() {
		return c.callUnary(ctx, creq)
	}
	cs, err := c.t.callStream()
	if err == errTransportClosed {
		return c.callUnary(ctx, creq)
	}
	if err != nil {
		return nil, err
	}
	id, ch, err := cs.submit(creq, size)
	if err == errCallsUnimplemented {
		creq.Id = 0
		return c.callUnary(ctx, creq)
	}
	if err != nil {
		return nil, err
	}
	select {
	case out := <-ch:
		switch {
		case out.err == errCallsUnimplemented:
			creq.Id = 0
			return c.callUnary(ctx, creq)
		case out.err != nil:
			return nil, c.t.fail(ctx, "call "+c.addr, out.err)
		case out.res.GetError() != "":
			return nil, c.t.fail(ctx, "call "+c.addr, envelopeStatus(out.res.GetError()))
		}
		return transportMessageFromProto(out.res.GetMessage()), nil
	case <-ctx.Done():
		cs.giveUp(id)
		return nil, c.t.fail(ctx, "call "+c.addr, ctx.Err())
	}
}

// callUnary makes the call as one Call RPC, for plugins without Calls.
func (c *pluginConn) callUnary(ctx context.Context, creq *pluginv1.CallRequest) (*transport.Message, error) {
	tc, err := c.t.current()
	if err != nil {
		return nil, err
	}
	resp, err := tc.Call(ctx, creq)
	if err != nil {
		return nil, c.t.fail(ctx, "call "+c.addr, err)
	}
	return transportMessageFromProto(resp), nil
}

// envelopeStatus is a CallResult's error as the status a Call RPC fails with.
func envelopeStatus(text string) error {
	var e errors.Error
	if json.Unmarshal([]byte(text), &e) != nil || e.Code == 0 {
		return status.Error(codes.Unknown, text)
	}
	return status.Error(grpcCode(e.Code), text)
}

// errCallsUnimplemented fails the calls of a Calls stream the plugin does not
// serve; their callers make them again as Call RPCs.
var errCallsUnimplemented = stderrors.New("the plugin does not serve Calls")

// callOutcome is what a caller on a Calls stream waits for.
type callOutcome struct {
	res *pluginv1.CallResult
	err error
}

// callStream is the Calls stream a transportClient shares among all its calls:
// one writer goroutine sends what callers queued as batches, one reader
// goroutine hands each result to its caller by id.
type callStream struct {
	t       *transportClient
	stream  pluginv1.Transport_CallsClient
	cancel  context.CancelFunc
	changed <-chan struct{} // conn.Changed() from before the stream opened
	out     *batcher[*pluginv1.CallRequest]
	// written closes when the writer ended; unsent then holds the calls it
	// could not send, which read fails once the stream's status is known.
	written chan struct{}
	unsent  []*pluginv1.CallRequest
	done    chan struct{} // closed when read has failed the calls left

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan callOutcome
	broken  bool
	retired bool // no new calls: it ends once the calls on it are answered
}

// errTransportClosed is callStream's answer once the transport is closed: a
// connection dialed before then makes its calls as single Call RPCs.
var errTransportClosed = stderrors.New("transport closed")

// callStream returns the shared Calls stream, opening it when there is none or
// the one there broke or belongs to a plugin process that was restarted.
func (t *transportClient) callStream() (*callStream, error) {
	t.callsMu.Lock()
	defer t.callsMu.Unlock()
	if cs := t.calls; cs != nil {
		if cs.usable() {
			return cs, nil
		}
		t.calls = nil
		cs.retire()
	}
	if t.closed.Load() { // Close retires streams: one opened now would never end
		return nil, errTransportClosed
	}
	changed := t.conn.Changed()
	tc, err := t.current()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := tc.Calls(ctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%w: %w", transport.ErrNotSent, errors.Unavailable(t.name, "plugin %s: opening the call stream: %v", t.name, FromStatus(t.name, err)))
	}
	cs := &callStream{
		t: t, stream: stream, cancel: cancel, changed: changed,
		out:     newBatcher[*pluginv1.CallRequest](),
		written: make(chan struct{}),
		done:    make(chan struct{}),
		pending: make(map[uint64]chan callOutcome),
	}
	go cs.write(ctx)
	go cs.read()
	t.calls = cs
	return cs, nil
}

// usable reports whether new calls may go on cs.
func (cs *callStream) usable() bool {
	select {
	case <-cs.changed:
		return false
	default:
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return !cs.broken && !cs.retired
}

// submit queues creq under a fresh id and returns the channel its outcome comes
// on. When the stream already ended it fails, with errCallsUnimplemented if the
// plugin does not serve Calls.
func (cs *callStream) submit(creq *pluginv1.CallRequest, size int) (uint64, <-chan callOutcome, error) {
	ch := make(chan callOutcome, 1)
	cs.mu.Lock()
	if cs.broken {
		cs.mu.Unlock()
		return 0, nil, cs.whyEnded()
	}
	cs.nextID++
	id := cs.nextID
	cs.pending[id] = ch
	cs.mu.Unlock()
	creq.Id = id
	if !cs.out.push(creq, size) {
		cs.forget(id)
		<-cs.done // the writer is gone: read is about to tell why
		return 0, nil, cs.whyEnded()
	}
	return id, ch, nil
}

// whyEnded is the error of a call that found the stream ended: it is made as a
// Call RPC when the plugin does not serve Calls, else it was not sent.
func (cs *callStream) whyEnded() error {
	if cs.t.unary.Load() {
		return errCallsUnimplemented
	}
	return cs.notSent("the call stream broke")
}

func (cs *callStream) notSent(why string) error {
	return fmt.Errorf("%w: %w", transport.ErrNotSent, errors.Unavailable(cs.t.name, "plugin %s: %s", cs.t.name, why))
}

// finish hands the outcome of call id to its caller, if it still waits, and
// ends a retired stream once no call is left on it. It reports whether the
// caller still waited.
func (cs *callStream) finish(id uint64, out callOutcome) bool {
	cs.mu.Lock()
	ch := cs.pending[id]
	delete(cs.pending, id)
	end := cs.retired && len(cs.pending) == 0
	cs.mu.Unlock()
	if ch != nil {
		ch <- out
	}
	if end {
		cs.cancel()
	}
	return ch != nil
}

// forget stops waiting for call id.
func (cs *callStream) forget(id uint64) { cs.finish(id, callOutcome{}) }

// giveUp stops waiting for call id, whose caller gave up, and has the plugin
// cancel it (a plugin from before given_up runs it until its timeout).
func (cs *callStream) giveUp(id uint64) {
	if cs.finish(id, callOutcome{}) {
		cs.out.push(&pluginv1.CallRequest{Id: id}, givenUpSize)
	}
}

// retire takes cs out of use: it ends once the calls on it are answered.
func (cs *callStream) retire() {
	cs.mu.Lock()
	cs.retired = true
	end := len(cs.pending) == 0
	cs.mu.Unlock()
	if end {
		cs.cancel()
	}
}

// write is the writer goroutine: it sends the queued calls as batches until the
// stream ends, and leaves those it could not send to read, which fails them.
func (cs *callStream) write(ctx context.Context) {
	defer close(cs.written)
	unsent, err := cs.out.run(ctx.Done(), func(calls []*pluginv1.CallRequest) error {
		calls, givenUp := splitGivenUp(calls)
		return cs.stream.Send(&pluginv1.CallBatch{Calls: calls, GivenUp: givenUp})
	})
	if err != nil && err != io.EOF {
		cs.cancel() // io.EOF: the plugin ended the stream, and Recv says why
	}
	cs.unsent = unsent
}

// read is the reader goroutine: it hands each result to its caller until the
// stream breaks, then fails the calls still waiting: as not sent those the
// writer could not send, the others as maybe sent. A Send on a stream the
// plugin ended fails before Recv tells why, so read waits for the writer: a
// plugin without Calls then has every call made again as a Call RPC.
func (cs *callStream) read() {
	var err error
	for {
		var b *pluginv1.CallResultBatch
		if b, err = cs.stream.Recv(); err != nil {
			break
		}
		for _, r := range b.GetResults() {
			cs.finish(r.GetId(), callOutcome{res: r})
		}
	}
	defer close(cs.done)
	cs.cancel()
	<-cs.written
	t := cs.t
	unimplemented := status.Code(err) == codes.Unimplemented
	if unimplemented {
		t.unary.Store(true) // before broken: submit reads it after
	}
	cs.mu.Lock()
	cs.broken = true
	pending := cs.pending
	cs.pending = make(map[uint64]chan callOutcome)
	cs.mu.Unlock()
	t.callsMu.Lock()
	if t.calls == cs {
		t.calls = nil
	}
	t.callsMu.Unlock()
	out, notSent := callOutcome{err: errCallsUnimplemented}, callOutcome{err: errCallsUnimplemented}
	if !unimplemented {
		out.err = errors.Unavailable(t.name, "plugin %s: the call stream broke with the call in flight: %v", t.name, FromStatus(t.name, err))
		notSent.err = cs.notSent("the call stream broke before the call was sent")
	}
	for _, c := range cs.unsent {
		if ch, ok := pending[c.GetId()]; ok {
			delete(pending, c.GetId())
			ch <- notSent
		}
	}
	for _, ch := range pending {
		ch <- out
	}
}

// Stream opens a stream to addr through the plugin and returns once the remote
// stream is open (the plugin confirms with its response header), so open
// failures come back here, not from the first Recv.
func (c *pluginConn) Stream(ctx context.Context, header map[string]string) (transport.Stream, error) {
	tc, err := c.t.current()
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	gs, err := tc.Stream(sctx)
	if err != nil {
		cancel()
		return nil, c.t.fail(ctx, "stream to "+c.addr, err)
	}
	open := &pluginv1.StreamFrame{Frame: &pluginv1.StreamFrame_Open{Open: &pluginv1.StreamOpen{Address: c.addr, Header: header}}}
	err = gs.Send(open)
	if err == nil {
		var md map[string][]string
		md, err = gs.Header()
		if err == nil && md == nil {
			// The stream ended before it opened; Recv says why.
			_, err = gs.Recv()
			if err == nil || err == io.EOF {
				err = errors.BadGateway("", "plugin %s ended the stream to %s before opening it", c.t.name, c.addr)
			}
		}
	} else if err == io.EOF {
		_, err = gs.Recv()
	}
	if err != nil {
		cancel()
		return nil, c.t.fail(ctx, "stream to "+c.addr, err)
	}
	return &callerStream{t: c.t, gs: gs, cancel: cancel}, nil
}

// Close does nothing: the plugin's transport pools its connections itself.
func (c *pluginConn) Close() error { return nil }

// callerStream is the caller's side of a stream opened through the plugin.
type callerStream struct {
	t      *transportClient
	gs     pluginv1.Transport_StreamClient
	cancel context.CancelFunc

	sendMu sync.Mutex
	recvMu sync.Mutex
	last   error // the terminal Recv result, once known (under recvMu)
	closed atomic.Bool
}

// Send writes one message.
func (s *callerStream) Send(body []byte) error {
	if frameTooLarge(body) {
		return errFrameTooLarge(len(body))
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if err := s.gs.Send(streamDataFrame(0, body)); err != nil {
		if err == io.EOF {
			return fmt.Errorf("transport %s: send on an ended stream: %w", s.t.name, io.ErrClosedPipe)
		}
		return s.t.fail(s.gs.Context(), "stream send", err)
	}
	return nil
}

// Recv reads the next message; io.EOF once the remote finished, its envelope
// when it ended with an error.
func (s *callerStream) Recv() ([]byte, error) {
	s.recvMu.Lock()
	defer s.recvMu.Unlock()
	if s.last != nil {
		return nil, s.last
	}
	for {
		if s.closed.Load() {
			return nil, s.finish(fmt.Errorf("transport %s: recv on a closed stream: %w", s.t.name, io.ErrClosedPipe))
		}
		f, err := s.gs.Recv()
		if err != nil {
			if err != io.EOF {
				err = s.t.fail(s.gs.Context(), "stream recv", err)
			}
			return nil, s.finish(err)
		}
		switch fr := f.GetFrame().(type) {
		case *pluginv1.StreamFrame_Data:
			return fr.Data, nil
		case *pluginv1.StreamFrame_End:
			return nil, s.finish(io.EOF)
		case *pluginv1.StreamFrame_Error:
			return nil, s.finish(streamErrorFromText(fr.Error))
		}
	}
}

// finish records the terminal result and releases the gRPC stream.
func (s *callerStream) finish(err error) error {
	s.last = err
	s.cancel()
	return err
}

// CloseSend tells the remote no more messages follow.
func (s *callerStream) CloseSend() error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if err := s.gs.Send(streamCloseSendFrame(0)); err != nil && err != io.EOF {
		return s.t.fail(s.gs.Context(), "stream close send", err)
	}
	return s.gs.CloseSend()
}

// Close ends the stream both ways.
func (s *callerStream) Close() error {
	s.closed.Store(true)
	s.cancel()
	return nil
}

// pluginListener is a listener in the plugin, served over a Listen stream that
// is re-opened on the same address whenever it breaks, until Shutdown or Close.
type pluginListener struct {
	t       *transportClient
	addr    string          // what the first Bound said; every re-listen binds it
	ctx     context.Context // the listener's life: Close cancels it
	cancel  context.CancelFunc
	serving atomic.Bool

	mu      sync.Mutex
	cur     *listenSession // nil while listening again
	closing bool           // Shutdown or Close was called: no more re-listening
	reading bool           // Serve reads every session's stream from now on
}

// Addr is the address the plugin bound first, with its real port.
func (l *pluginListener) Addr() string { return l.addr }

// Serve hands the plugin's requests and streams to h, each in its own goroutine,
// until Shutdown or Close; when the Listen stream breaks (the plugin crashed or
// restarted) it listens again on Addr, waking when the plugin is back. It returns
// nil after Shutdown or Close, and an error wrapping transport.ErrClosed once the
// plugin was stopped for good.
func (l *pluginListener) Serve(h transport.Handler) error {
	if h == nil {
		return fmt.Errorf("transport %s: Serve needs a handler", l.t.name)
	}
	if !l.serving.CompareAndSwap(false, true) {
		return fmt.Errorf("transport %s: the listener on %s is already serving", l.t.name, l.addr)
	}
	l.mu.Lock()
	sess := l.cur
	if l.closing {
		sess = nil
	} else {
		l.reading = true
	}
	l.mu.Unlock()
	wait := relistenMinWait
	for sess != nil {
		started := time.Now()
		sess.run(h)
		if time.Since(started) > relistenMaxWait {
			wait = relistenMinWait // it served a while: a fresh failure
		}
		var err error
		sess, err = l.relisten(sess.changed, &wait)
		if err != nil {
			return err
		}
	}
	return nil
}

// relisten waits until the plugin can listen on addr again and returns the new
// session, or nil once the listener is closing. It tries when the plugin restarts
// (changed) and after *wait, which doubles up to relistenMaxWait between tries
// and across sessions that break at once.
func (l *pluginListener) relisten(changed <-chan struct{}, wait *time.Duration) (*listenSession, error) {
	l.mu.Lock()
	l.cur = nil
	closing := l.closing
	l.mu.Unlock()
	if closing {
		return nil, nil
	}
	timer := time.NewTimer(*wait)
	defer timer.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return nil, nil
		case <-changed:
			changed = nil // fetched anew below, before the next try
		case <-timer.C:
		}
		*wait = min(2**wait, relistenMaxWait)
		if l.t.conn.Stopped() {
			return nil, fmt.Errorf("transport %s: listener on %s: the plugin was stopped: %w", l.t.name, l.addr, transport.ErrClosed)
		}
		next := l.t.conn.Changed()
		ctx, cancel := context.WithTimeout(l.ctx, relistenBindTimeout)
		sess, err := l.open(ctx, l.addr)
		cancel()
		if err == nil {
			l.mu.Lock()
			closing := l.closing
			if !closing {
				l.cur = sess
			}
			l.mu.Unlock()
			if closing {
				sess.cancel()
				return nil, nil
			}
			return sess, nil
		}
		changed = next
		timer.Reset(*wait)
	}
}

// open starts a Listen stream and has the plugin bind addr; ctx bounds the bind.
func (l *pluginListener) open(ctx context.Context, addr string) (*listenSession, error) {
	changed := l.t.conn.Changed()
	tc, err := l.t.current()
	if err != nil {
		return nil, err
	}
	sctx, scancel := context.WithCancel(l.ctx)
	stream, err := tc.Listen(sctx)
	if err != nil {
		scancel()
		return nil, l.t.fail(ctx, "listen on "+addr, err)
	}
	sess := &listenSession{
		l: l, stream: stream, ctx: sctx, cancel: scancel, changed: changed,
		streams:      make(map[uint64]*incomingStream),
		shutdownDone: make(chan struct{}),
		ended:        make(chan struct{}),
	}
	lreq := &pluginv1.ListenRequest{Address: addr, Batch: true}
	if dc := l.t.awaitDataPath(ctx); dc != nil {
		// Requests may come on the data path before Bound comes here: the
		// session is registered first.
		if lid, ok := dc.addListener(sess); ok {
			sess.data = dc
			lreq.DataConn, lreq.DataListener = dc.id, lid
			context.AfterFunc(sctx, func() {
				dc.removeListener(lid)
				sess.dropEarly()
			})
		}
	}
	stop := context.AfterFunc(ctx, scancel)
	var m *pluginv1.ListenerServerMessage
	err = stream.Send(&pluginv1.ListenerClientMessage{Msg: &pluginv1.ListenerClientMessage_Listen{Listen: lreq}})
	if err == nil || err == io.EOF {
		m, err = stream.Recv()
	}
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err == nil && m.GetBound() == nil {
		err = errors.BadGateway("", "plugin %s answered a ListenRequest without Bound", l.t.name)
	}
	if err != nil {
		scancel()
		return nil, l.t.fail(ctx, "listen on "+addr, err)
	}
	sess.bound = m.GetBound().GetAddress()
	if sess.data != nil && !m.GetBound().GetData() {
		dc := sess.data
		sess.data = nil // the plugin sends every request on the stream
		dc.removeListener(lreq.DataListener)
	}
	if m.GetBound().GetBatch() {
		sess.resps = newBatcher[*pluginv1.Response]()
	}
	return sess, nil
}

// Shutdown asks the plugin to stop accepting and drain in-flight requests and
// streams, and waits for it until ctx ends; the listener is closed either way.
func (l *pluginListener) Shutdown(ctx context.Context) error {
	var ms int64
	if dl, ok := ctx.Deadline(); ok {
		ms = max(1, time.Until(dl).Milliseconds())
	}
	return l.stop(ctx, ms)
}

// closeWait bounds how long Close waits for the plugin to say its socket is
// closed.
const closeWait = 2 * time.Second

// Close stops at once: it asks the plugin for a drain of a millisecond and
// waits, up to closeWait, until the plugin has closed its socket, so that once
// Close returns nobody reaches the address any more, as with a built-in
// listener. Requests still in flight then fail.
func (l *pluginListener) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), closeWait)
	defer cancel()
	_ = l.stop(ctx, 1)
	return nil
}

// stop sends the plugin a ShutdownListener with a drain of drainMS
// milliseconds (0: no limit) and waits until the plugin answers that it is done
// or ctx ends; then the session ends. When Serve does not read the stream,
// stop reads it itself.
func (l *pluginListener) stop(ctx context.Context, drainMS int64) error {
	l.mu.Lock()
	l.closing = true
	sess, reading := l.cur, l.reading
	l.mu.Unlock()
	defer l.cancel()
	if sess == nil {
		return nil // listening again: the plugin holds no socket for it
	}
	err := sess.send(&pluginv1.ListenerClientMessage{Msg: &pluginv1.ListenerClientMessage_Shutdown{Shutdown: &pluginv1.ShutdownListener{DrainTimeoutMs: drainMS}}})
	if err != nil {
		return nil // the stream is gone, and with it the plugin's listener
	}
	if !reading {
		// Nothing was served: only the answer matters, read here until it comes.
		unblock := context.AfterFunc(ctx, sess.cancel)
		defer unblock()
		for {
			m, err := sess.stream.Recv()
			if err != nil {
				break
			}
			if m.GetShutdownDone() != nil {
				return nil
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("transport %s: shutdown of the listener on %s: %w", l.t.name, l.addr, ctx.Err())
		}
		return nil
	}
	select {
	case <-sess.shutdownDone:
	case <-sess.ended:
	case <-ctx.Done():
		return fmt.Errorf("transport %s: shutdown of the listener on %s: %w", l.t.name, l.addr, ctx.Err())
	}
	return nil
}

// listenSession is one Listen stream of a pluginListener.
type listenSession struct {
	l       *pluginListener
	stream  pluginv1.Transport_ListenClient
	ctx     context.Context // handlers' context: ends with the stream
	cancel  context.CancelFunc
	changed <-chan struct{} // conn.Changed() from before the stream opened
	bound   string

	sendMu sync.Mutex
	resps  *batcher[*pluginv1.Response] // when the plugin reads ResponseBatch

	mu           sync.Mutex
	streams      map[uint64]*incomingStream
	served       inFlight // requests from the stream being served
	shutdownDone chan struct{}
	doneOnce     sync.Once
	ended        chan struct{} // closed when run returns

	// On the data path, requests come through data and are answered there.
	data     *dataClient
	handler  atomic.Pointer[transport.Handler] // set by run
	framedMu sync.Mutex
	early    []framedRequest // requests that came before run
	// earlyDropped: the session ended, so requests that would wait for run
	// are dropped instead.
	earlyDropped bool
}

// run reads the Listen stream until it ends, starting a goroutine per request
// and stream; their handlers see the session's context end with it.
func (s *listenSession) run(h transport.Handler) {
	defer close(s.ended)
	if s.data != nil {
		s.serveEarly(h)
	}
	if s.resps != nil {
		go s.resps.run(s.ctx.Done(), func(rs []*pluginv1.Response) error {
			return s.send(&pluginv1.ListenerClientMessage{Msg: &pluginv1.ListenerClientMessage_Responses{Responses: &pluginv1.ResponseBatch{Responses: rs}}})
		})
	}
	for {
		m, err := s.stream.Recv()
		if err != nil {
			break
		}
		switch msg := m.GetMsg().(type) {
		case *pluginv1.ListenerServerMessage_Request:
			go s.serveRequest(s.served.start(s.ctx, msg.Request.GetId()), h, msg.Request)
		case *pluginv1.ListenerServerMessage_Requests:
			for _, r := range msg.Requests.GetRequests() {
				go s.serveRequest(s.served.start(s.ctx, r.GetId()), h, r)
			}
			for _, id := range msg.Requests.GetGivenUp() {
				s.served.giveUp(id)
			}
		case *pluginv1.ListenerServerMessage_Stream:
			s.route(h, msg.Stream)
		case *pluginv1.ListenerServerMessage_ShutdownDone:
			s.doneOnce.Do(func() { close(s.shutdownDone) })
		}
	}
	s.cancel()
	s.mu.Lock()
	streams := s.streams
	s.streams = make(map[uint64]*incomingStream)
	s.mu.Unlock()
	for _, st := range streams {
		st.q.fail(errListenerGone("plugin "+s.l.t.name), false)
	}
}

func (s *listenSession) send(m *pluginv1.ListenerClientMessage) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	return s.stream.Send(m)
}

func (s *listenSession) sendFrame(f *pluginv1.StreamFrame) error {
	return s.send(&pluginv1.ListenerClientMessage{Msg: &pluginv1.ListenerClientMessage_Stream{Stream: f}})
}

// serveRequest answers one request with h, under ctx; an answer too big for the
// boundary becomes a 502.
func (s *listenSession) serveRequest(ctx context.Context, h transport.Handler, in *pluginv1.IncomingRequest) {
	defer s.served.done(in.GetId())
	resp := h.ServeRequest(ctx, transportMessageFromProto(in.GetMessage()))
	if resp == nil {
		resp = transportErrorMessage(errors.Internal("", "the handler returned no response"))
	}
	if s.resps != nil {
		r := &pluginv1.Response{Id: in.GetId(), Message: transportMessageToProto(resp)}
		n, ok := batchSize(r, r.GetMessage(), 0)
		if !ok {
			resp = transportErrorMessage(errors.BadGateway("", "response of %d bytes is over the plugin boundary's %d byte limit", n, wireLimit))
			r.Message = transportMessageToProto(resp)
			n, _ = batchSize(r, r.GetMessage(), 0)
		}
		s.resps.push(r, n) // once the stream ended, the plugin answers the caller itself
		return
	}
	out := &pluginv1.ListenerClientMessage{Msg: &pluginv1.ListenerClientMessage_Response{Response: &pluginv1.Response{Id: in.GetId(), Message: transportMessageToProto(resp)}}}
	if n := proto.Size(out); n > wireLimit {
		resp = transportErrorMessage(errors.BadGateway("", "response of %d bytes is over the plugin boundary's %d byte limit", n, wireLimit))
		out.GetResponse().Message = transportMessageToProto(resp)
	}
	_ = s.send(out)
}

// route starts a stream on its open frame and queues the caller's later frames
// for it; frames of finished streams are dropped.
func (s *listenSession) route(h transport.Handler, f *pluginv1.StreamFrame) {
	if open := f.GetOpen(); open != nil {
		st := &incomingStream{s: s, id: f.GetId(), q: newStreamQueue()}
		s.mu.Lock()
		s.streams[st.id] = st
		s.mu.Unlock()
		header := open.GetHeader()
		if header == nil {
			header = make(map[string]string)
		}
		go s.serveStream(h, st, header)
		return
	}
	s.mu.Lock()
	st := s.streams[f.GetId()]
	s.mu.Unlock()
	if st != nil && !st.q.push(f) {
		st.q.fail(errors.Unavailable("", "the handler of stream %d reads slower than its caller sends; %d bytes are waiting", st.id, streamQueueLimit), true)
	}
}

// serveStream runs h's stream handler and ends the stream with end or error.
func (s *listenSession) serveStream(h transport.Handler, st *incomingStream, header map[string]string) {
	err := h.ServeStream(s.ctx, header, st)
	st.ended.Store(true)
	st.q.fail(errors.New("", errors.StatusClientClosed, "stream already ended"), true)
	s.mu.Lock()
	delete(s.streams, st.id)
	s.mu.Unlock()
	f := streamEndFrame(st.id)
	if err != nil {
		f = streamErrorFrame(st.id, err)
	}
	_ = s.sendFrame(f)
}

// incomingStream is the handler's side of a stream a caller opened on the
// plugin's listener.
type incomingStream struct {
	s     *listenSession
	id    uint64
	q     *streamQueue
	ended atomic.Bool // the handler returned or closed the stream
}

// Send writes one message to the caller.
func (st *incomingStream) Send(body []byte) error {
	if st.ended.Load() {
		return errors.New("", errors.StatusClientClosed, "stream already ended")
	}
	if frameTooLarge(body) {
		return errFrameTooLarge(len(body))
	}
	if err := st.s.sendFrame(streamDataFrame(st.id, body)); err != nil {
		return errListenerGone("plugin " + st.s.l.t.name)
	}
	return nil
}

// Recv reads the caller's next message: io.EOF once the caller finished, an
// *errors.Error when the caller went away or the plugin's listener did.
func (st *incomingStream) Recv() ([]byte, error) {
	f, err := st.q.pop(nil)
	if err != nil {
		return nil, err
	}
	switch fr := f.GetFrame().(type) {
	case *pluginv1.StreamFrame_Data:
		return fr.Data, nil
	case *pluginv1.StreamFrame_Error:
		e := streamErrorFromText(fr.Error)
		st.q.fail(e, true)
		return nil, e
	default: // close_send or end: the caller finished
		st.q.fail(io.EOF, true)
		return nil, io.EOF
	}
}

// CloseSend tells the caller no more messages follow.
func (st *incomingStream) CloseSend() error {
	if st.ended.Load() {
		return nil
	}
	return st.s.sendFrame(streamCloseSendFrame(st.id))
}

// Close stops reading; the stream ends for the caller when the handler returns.
func (st *incomingStream) Close() error {
	st.ended.Store(true)
	st.q.fail(errors.New("", errors.StatusClientClosed, "stream closed"), true)
	return nil
}
