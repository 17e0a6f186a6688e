package plugin

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	stderrors "errors"
	"fmt"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/microhost/micro/sdk/errors"
	pluginv1 "github.com/microhost/micro/sdk/plugin/proto/micro/plugin/v1"
	"github.com/microhost/micro/sdk/transport"
)

// dataPathDialTimeout bounds dialing a plugin's data path and reading its hello.
const dataPathDialTimeout = 5 * time.Second

// DataPathConn is a Conn whose transport plugin may also be reached on its data
// path: ClientTLS is the mutual-TLS configuration the host dials the plugin
// channel with, and the data path is dialed with the same. A transport client
// over a Conn without it uses the gRPC channel only.
type DataPathConn interface {
	Conn
	ClientTLS() *tls.Config
}

// dataResult is what a call on the data path waits for.
type dataResult struct {
	msg    *transport.Message // the response, when status is resultOK
	status byte
	text   string // the JSON envelope, when the call failed
	err    error  // the connection broke or the frame never left
}

// dataClient is the host's end of one data path connection to a transport
// plugin: calls go out as call frames and their results come back by id, and the
// requests of the listeners registered on it come in as request frames and go
// back as response frames.
type dataClient struct {
	t       *transportClient
	fc      *frameConn
	id      uint64          // the number the plugin gave the connection
	version uint32          // the frame protocol, from the plugin's hello
	changed <-chan struct{} // conn.Changed() from before the connection opened
	serve   *workerPool[framedRequest]
	served  inFlight // requests being served (version 2)

	mu           sync.Mutex
	nextID       uint64
	calls        map[uint64]chan dataResult
	nextListener uint64
	listeners    map[uint64]*listenSession
	broken       bool
	retired      bool // no new calls or listeners: it closes once idle
}

// dataPath returns the open data path connection, or nil while there is none
// and the caller uses the gRPC channel. No call waits for the data path: when
// none is open, an attempt to connect starts in the background.
func (t *transportClient) dataPath() *dataClient {
	dc, _ := t.dataPathOrAttempt()
	return dc
}

// awaitDataPath is dataPath for a listener being opened: it waits, within ctx,
// for the connection attempt, so a server's requests take the data path from
// the first one.
func (t *transportClient) awaitDataPath(ctx context.Context) *dataClient {
	dc, attempt := t.dataPathOrAttempt()
	if dc != nil || attempt == nil {
		return dc
	}
	select {
	case <-attempt:
	case <-ctx.Done():
		return nil
	}
	t.dataMu.Lock()
	defer t.dataMu.Unlock()
	return t.data
}

// dataPathOrAttempt returns the open connection or, when there is none, the
// channel closed when the attempt to connect ends, starting one unless the
// plugin offers no data path (until it restarts) or the last attempt failed
// too recently; then both are nil.
func (t *transportClient) dataPathOrAttempt() (*dataClient, <-chan struct{}) {
	t.dataMu.Lock()
	defer t.dataMu.Unlock()
	if dc := t.data; dc != nil {
		if dc.usable() {
			return dc, nil
		}
		t.data = nil
		// Closing may wait on the socket (TLS sends close_notify): not
		// while every caller waits for the lock.
		go dc.retire()
	}
	if t.dataDialing != nil {
		return nil, t.dataDialing
	}
	if t.dataFailed {
		select {
		case <-t.dataOff: // the plugin restarted: ask the new process, at once
			t.dataFailed, t.dataRetry, t.dataWait = false, time.Time{}, 0
		default:
			if time.Now().Before(t.dataRetry) || t.dataRetry.IsZero() {
				return nil, nil
			}
		}
	}
	if t.closed.Load() {
		return nil, nil
	}
	attempt := make(chan struct{})
	t.dataDialing = attempt
	go t.connectDataPath(attempt)
	return nil, attempt
}

// connectDataPath makes one attempt to open the data path and closes attempt
// when it is over. A plugin that offers none is not asked again until it
// restarts; any other failure (the plugin is down, or the socket refused) is
// tried again after a wait growing from relistenMinWait to relistenMaxWait, or
// at once after a restart. Until then the gRPC channel carries everything.
func (t *transportClient) connectDataPath(attempt chan struct{}) {
	changed := t.conn.Changed()
	dc, err := t.dialDataPath(changed)
	t.dataMu.Lock()
	defer t.dataMu.Unlock()
	defer close(attempt)
	t.dataDialing = nil
	switch {
	case err == nil && t.closed.Load():
		dc.retire()
	case err == nil:
		t.data, t.dataFailed, t.dataWait = dc, false, 0
	case stderrors.Is(err, errNoDataPath):
		t.dataFailed, t.dataOff, t.dataRetry = true, changed, time.Time{}
	default:
		t.dataWait = min(max(2*t.dataWait, relistenMinWait), relistenMaxWait)
		t.dataFailed, t.dataOff, t.dataRetry = true, changed, time.Now().Add(t.dataWait)
	}
}

// errNoDataPath marks a plugin that offers no data path this host speaks.
var errNoDataPath = stderrors.New("no data path offered")

// dialDataPath asks the plugin for its data path and connects to it.
func (t *transportClient) dialDataPath(changed <-chan struct{}) (*dataClient, error) {
	dconn, ok := t.conn.(DataPathConn)
	if !ok {
		return nil, fmt.Errorf("%w: no TLS configuration to dial one with", errNoDataPath)
	}
	tc, err := t.current()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(t.background, dataPathDialTimeout)
	defer cancel()
	ep, err := tc.DataPath(ctx, &pluginv1.DataPathRequest{Versions: dataPathOffer()})
	if err != nil {
		if status.Code(err) == codes.Unimplemented {
			return nil, fmt.Errorf("plugin %s: %w: %w", t.name, errNoDataPath, err)
		}
		return nil, fmt.Errorf("plugin %s: asking for its data path: %w", t.name, FromStatus(t.name, err))
	}
	if ep.GetAddress() == "" || chooseDataPathVersion([]uint32{ep.GetVersion()}) == 0 {
		return nil, fmt.Errorf("plugin %s: %w (version %d; this host speaks %d to %d)", t.name, errNoDataPath, ep.GetVersion(), dataPathMinVersion, dataPathVersion)
	}
	d := tls.Dialer{Config: dconn.ClientTLS()}
	nc, err := d.DialContext(ctx, ep.GetNetwork(), ep.GetAddress())
	if err != nil {
		return nil, fmt.Errorf("plugin %s: dialing its data path: %w", t.name, err)
	}
	id, version, err := readHello(ctx, nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("plugin %s: data path hello: %w", t.name, err)
	}
	dc := &dataClient{
		t: t, id: id, version: version, changed: changed,
		calls:     make(map[uint64]chan dataResult),
		listeners: make(map[uint64]*listenSession),
	}
	dc.fc = newFrameConn(nc, dc.unsent)
	dc.serve = newWorkerPool(dc.fc.done, func(r framedRequest) { r.sess.serveFramed(r) })
	dc.fc.start(dc.handle, dc.broke)
	return dc, nil
}

// readHello reads the plugin's first frame, which numbers the connection and
// names its frame protocol version.
func readHello(ctx context.Context, nc net.Conn) (id uint64, version uint32, err error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetReadDeadline(dl)
		defer nc.SetReadDeadline(time.Time{})
	}
	var prefix [frameLenSize]byte
	p, err := readFrame(nc, prefix[:])
	if err != nil {
		return 0, 0, err
	}
	d := frameDecoder{p: p}
	typ, id, v := d.byte(), d.uvarint(), d.uvarint()
	if d.bad || typ != frameHello || v < dataPathMinVersion || v > dataPathVersion {
		return 0, 0, errBadFrame
	}
	return id, uint32(v), nil
}

// usable reports whether new calls and listeners may use dc.
func (dc *dataClient) usable() bool {
	select {
	case <-dc.changed:
		return false
	default:
	}
	dc.mu.Lock()
	defer dc.mu.Unlock()
	return !dc.broken && !dc.retired
}

// retire takes dc out of use: it closes once no call or listener is left on it.
func (dc *dataClient) retire() {
	dc.mu.Lock()
	dc.retired = true
	idle := len(dc.calls) == 0 && len(dc.listeners) == 0
	dc.mu.Unlock()
	if idle {
		dc.fc.close()
	}
}

// idleLocked reports whether dc is retired and nothing uses it; dc.mu is held.
func (dc *dataClient) idleLocked() bool {
	return dc.retired && len(dc.calls) == 0 && len(dc.listeners) == 0
}

// notSent is the 503 for a call that never left.
func (dc *dataClient) notSent(why string) error {
	name := dc.t.name
	return fmt.Errorf("%w: %w", transport.ErrNotSent, errors.Unavailable(name, "plugin %s: %s", name, why))
}

// call makes one call through the plugin: a call frame out, a result frame back.
func (dc *dataClient) call(ctx context.Context, addr string, req *transport.Message) (*transport.Message, error) {
	var timeout uint64
	if dl, ok := ctx.Deadline(); ok {
		timeout = uint64(max(1, time.Until(dl).Microseconds()))
	}
	size := frameSize(1<<63, uvarintLen(timeout)+uvarintLen(uint64(len(addr)))+len(addr)+messageSize(req))
	if size > dataFrameLimit {
		return nil, errors.PayloadTooLarge("", "request of %d bytes is over the plugin boundary's %d byte limit; send less", size, dataFrameLimit)
	}
	ch := make(chan dataResult, 1)
	dc.mu.Lock()
	if dc.broken {
		dc.mu.Unlock()
		return nil, dc.notSent("the data connection broke")
	}
	dc.nextID++
	id := dc.nextID
	dc.calls[id] = ch
	dc.mu.Unlock()

	buf := dc.fc.getBuf()
	b := beginFrame((*buf)[:0], frameCall, id)
	b = binary.AppendUvarint(b, timeout)
	b = appendString(b, addr)
	*buf = endFrame(appendMessage(b, req), 0)
	if !dc.fc.send(buf, id) {
		dc.finish(id, dataResult{})
		return nil, dc.notSent("the data connection broke")
	}

	var r dataResult
	select {
	case r = <-ch:
	case <-ctx.Done():
		if dc.finish(id, dataResult{}) {
			dc.cancelCall(id)
		}
		return nil, dc.t.fail(ctx, "call "+addr, ctx.Err())
	}
	switch {
	case r.err != nil:
		if ctx.Err() != nil {
			return nil, dc.t.fail(ctx, "call "+addr, ctx.Err())
		}
		return nil, r.err
	case r.status != resultOK:
		return nil, dc.t.fail(ctx, "call "+addr, envelopeStatus(r.text))
	}
	return r.msg, nil
}

// cancelCall tells the plugin the caller of call id gave up.
func (dc *dataClient) cancelCall(id uint64) {
	buf := dc.fc.getBuf()
	*buf = endFrame(beginFrame((*buf)[:0], frameCancel, id), 0)
	dc.fc.send(buf, 0)
}

// finish hands call id its result, if its caller still waits, and reports
// whether it did; a retired dc closes once idle.
func (dc *dataClient) finish(id uint64, r dataResult) bool {
	dc.mu.Lock()
	ch, ok := dc.calls[id]
	delete(dc.calls, id)
	idle := ok && dc.idleLocked()
	dc.mu.Unlock()
	if ok {
		ch <- r
	}
	if idle {
		dc.fc.close()
	}
	return ok
}

// unsent fails a call whose frame the writer never wrote.
func (dc *dataClient) unsent(id uint64) {
	dc.finish(id, dataResult{err: dc.notSent("the data connection broke before the call was sent")})
}

// handle is the reader's frame handler.
func (dc *dataClient) handle(typ byte, id uint64, d *frameDecoder) error {
	switch typ {
	case frameResult:
		r := dataResult{status: d.byte()}
		if r.status == resultOK {
			msg, err := d.message()
			if err != nil {
				return err
			}
			r.msg = msg
		} else {
			r.text = string(d.rest())
		}
		if d.bad {
			return errBadFrame
		}
		dc.finish(id, r)
	case frameRequest:
		lid := d.uvarint()
		msg, err := d.message()
		if err != nil {
			return err
		}
		dc.mu.Lock()
		sess := dc.listeners[lid]
		dc.mu.Unlock()
		if sess == nil {
			dc.respond(id, transportErrorMessage(errListenerGone("plugin "+dc.t.name)))
			return nil
		}
		sess.deliverFramed(framedRequest{sess: sess, ctx: dc.requestContext(sess.ctx, id), id: id, msg: msg})
	case frameGiveUp:
		dc.served.giveUp(id)
	default:
		return fmt.Errorf("%w: unexpected frame type %d from the plugin", errBadFrame, typ)
	}
	return nil
}

// requestContext returns the context request id is served with: on a version
// 2 connection one of its own under parent, ended when the plugin says the
// remote caller gave up, or by requestDone.
func (dc *dataClient) requestContext(parent context.Context, id uint64) context.Context {
	if dc.version < 2 {
		return parent
	}
	return dc.served.start(parent, id)
}

// requestDone releases the context of request id, answered or dropped.
func (dc *dataClient) requestDone(id uint64) {
	if dc.version >= 2 {
		dc.served.done(id)
	}
}

// respond answers request id; a response too big for a frame becomes a 502.
// Once the connection is gone, the plugin answers the caller itself.
func (dc *dataClient) respond(id uint64, resp *transport.Message) {
	if size := frameSize(id, messageSize(resp)); size > dataFrameLimit {
		resp = transportErrorMessage(errors.BadGateway("", "response of %d bytes is over the plugin boundary's %d byte limit", size, dataFrameLimit))
	}
	buf := dc.fc.getBuf()
	b := beginFrame((*buf)[:0], frameResponse, id)
	*buf = endFrame(appendMessage(b, resp), 0)
	dc.fc.send(buf, 0)
}

// broke runs when the connection ended: calls still waiting fail with a 503
// (they may have been sent), and listeners on it end their Listen streams so
// they listen again.
func (dc *dataClient) broke(err error) {
	dc.mu.Lock()
	dc.broken = true
	calls := dc.calls
	dc.calls = make(map[uint64]chan dataResult)
	sessions := make([]*listenSession, 0, len(dc.listeners))
	for _, s := range dc.listeners {
		sessions = append(sessions, s)
	}
	dc.mu.Unlock()
	t := dc.t
	t.dataMu.Lock()
	if t.data == dc {
		t.data = nil
	}
	t.dataMu.Unlock()
	out := dataResult{err: errors.Unavailable(t.name, "plugin %s: the data connection broke with the call in flight: %v", t.name, err)}
	for _, ch := range calls {
		ch <- out
	}
	for _, s := range sessions {
		s.cancel()
	}
}

// addListener registers sess for the requests the plugin tags with the returned
// listener number; false once dc broke.
func (dc *dataClient) addListener(sess *listenSession) (uint64, bool) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if dc.broken {
		return 0, false
	}
	dc.nextListener++
	dc.listeners[dc.nextListener] = sess
	return dc.nextListener, true
}

// removeListener forgets listener lid; a retired dc closes once idle.
func (dc *dataClient) removeListener(lid uint64) {
	dc.mu.Lock()
	_, ok := dc.listeners[lid]
	delete(dc.listeners, lid)
	idle := ok && dc.idleLocked()
	dc.mu.Unlock()
	if idle {
		dc.fc.close()
	}
}

// framedRequest is a request that came on the data path, for a worker to
// serve with h, or to wait in its session until Serve sets h.
type framedRequest struct {
	sess *listenSession
	h    transport.Handler
	ctx  context.Context // the handler's: the session's, or its own on version 2
	id   uint64
	msg  *transport.Message
}

// deliverFramed runs the handler for a request of this session that came on the
// data path; requests that come before Serve wait for it, and those still
// waiting when the session ends are dropped (the plugin answers their callers).
func (s *listenSession) deliverFramed(r framedRequest) {
	if h := s.handler.Load(); h != nil {
		r.h = *h
		s.data.serve.submit(r)
		return
	}
	s.framedMu.Lock()
	if h := s.handler.Load(); h != nil {
		s.framedMu.Unlock()
		r.h = *h
		s.data.serve.submit(r)
		return
	}
	if s.earlyDropped {
		s.framedMu.Unlock()
		s.data.requestDone(r.id)
		return
	}
	s.early = append(s.early, r)
	s.framedMu.Unlock()
}

// dropEarly drops the requests waiting for Serve once the session has ended,
// and those that come after.
func (s *listenSession) dropEarly() {
	s.framedMu.Lock()
	early := s.early
	s.early, s.earlyDropped = nil, true
	s.framedMu.Unlock()
	for _, r := range early {
		s.data.requestDone(r.id)
	}
}

// serveFramed answers one request of the data path with its handler.
func (s *listenSession) serveFramed(r framedRequest) {
	resp := r.h.ServeRequest(r.ctx, r.msg)
	if resp == nil {
		resp = transportErrorMessage(errors.Internal("", "the handler returned no response"))
	}
	s.data.respond(r.id, resp)
	s.data.requestDone(r.id)
}

// serveEarly sets the session's handler and runs the data path requests that
// came before it.
func (s *listenSession) serveEarly(h transport.Handler) {
	s.framedMu.Lock()
	s.handler.Store(&h)
	early := s.early
	s.early = nil
	s.framedMu.Unlock()
	for _, r := range early {
		r.h = h
		s.data.serve.submit(r)
	}
}
