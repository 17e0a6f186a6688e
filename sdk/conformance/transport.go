package conformance

import (
	"bytes"
	"context"
	stderrors "errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/transport"
)

// Transport runs the transport.Transport conformance suite. newTransport is called
// for each side of each subtest (one for the listener, one for the caller) with
// that subtest's t; it registers the transport's Close with t.Cleanup. Listeners
// bind "127.0.0.1:0" and are closed when their subtest ends.
//
// Answers are awaited up to Timeout; the Shutdown subtest watches for Quiet to
// see that Shutdown waits for a call in flight. ExpectNotSent makes a call to a
// closed address also require an error wrapping transport.ErrNotSent.
//
// Subtests (each runnable alone with -run): Listen, Call, Status,
// ConcurrentCalls, Stream, StreamError, LargeBody, ClosedAddress, Shutdown.
func Transport(t *testing.T, newTransport func(t *testing.T) transport.Transport, opts ...Option) {
	t.Helper()
	s := &transportSuite{cfg: newConfig(opts), newTransport: newTransport}
	for _, tc := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"Listen", s.listenAddr},
		{"Call", s.call},
		{"Status", s.status},
		{"ConcurrentCalls", s.concurrentCalls},
		{"Stream", s.stream},
		{"StreamError", s.streamError},
		{"LargeBody", s.largeBody},
		{"ClosedAddress", s.closedAddress},
		{"Shutdown", s.shutdown},
	} {
		t.Run(tc.name, tc.run)
	}
}

// Endpoints and headers of the suite's handler. The custom header names are
// canonical, as transport.Message requires.
const (
	epEcho       = "Conformance.Echo"       // answers with the request body and headers
	epStatus     = "Conformance.Status"     // answers with the status in hdrStatus
	epSlow       = "Conformance.Slow"       // echoes once the test releases it
	epStream     = "Conformance.Stream"     // echoes every stream message until EOF
	epStreamFail = "Conformance.StreamFail" // ends the stream with a 409 after one message

	hdrID       = "Micro-Conformance-Id"           // travels both ways
	hdrStatus   = "Micro-Conformance-Status"       // the status epStatus answers with
	hdrEndpoint = "Micro-Conformance-Endpoint"     // the endpoint the handler saw
	hdrCType    = "Micro-Conformance-Content-Type" // the Content-Type the handler saw
)

// transportSuite holds what every transport subtest needs.
type transportSuite struct {
	cfg          config
	newTransport func(t *testing.T) transport.Transport
}

// open returns a transport for one side of one subtest.
func (s *transportSuite) open(t *testing.T) transport.Transport {
	t.Helper()
	tr := s.newTransport(t)
	if tr == nil {
		t.Fatal("newTransport returned nil")
	}
	return tr
}

// served is a listener being served and the result of its Serve.
type served struct {
	ln   transport.Listener
	done chan struct{} // closed when Serve returned; err holds its result
	err  error
}

// serve listens on a free loopback port and serves h until the test ends, then
// checks Serve returned nil.
func (s *transportSuite) serve(t *testing.T, tr transport.Transport, h transport.Handler) *served {
	t.Helper()
	ln, err := tr.Listen(callCtx(t, s.cfg.timeout), "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen(127.0.0.1:0): %v", err)
	}
	sv := &served{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(sv.done)
		sv.err = ln.Serve(h)
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		select {
		case <-sv.done:
			if sv.err != nil {
				t.Errorf("Serve returned %v after Close, want nil", sv.err)
			}
		case <-time.After(s.cfg.timeout):
			t.Errorf("Serve did not return within %v of Close", s.cfg.timeout)
		}
	})
	return sv
}

// waitServe waits for Serve to return and fails t unless it returned nil.
func (s *transportSuite) waitServe(t *testing.T, sv *served, after string) {
	t.Helper()
	select {
	case <-sv.done:
		if sv.err != nil {
			t.Errorf("Serve returned %v after %s, want nil", sv.err, after)
		}
	case <-time.After(s.cfg.timeout):
		t.Fatalf("Serve did not return within %v of %s", s.cfg.timeout, after)
	}
}

// dial returns a Conn from a fresh caller-side transport to addr.
func (s *transportSuite) dial(t *testing.T, addr string) transport.Conn {
	t.Helper()
	conn, err := s.open(t).Dial(callCtx(t, s.cfg.timeout), addr)
	if err != nil {
		t.Fatalf("Dial(%s): %v", addr, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// setup serves a new handler and dials it.
func (s *transportSuite) setup(t *testing.T) (*transportHandler, *served, transport.Conn) {
	t.Helper()
	h := newTransportHandler()
	sv := s.serve(t, s.open(t), h)
	return h, sv, s.dial(t, sv.ln.Addr())
}

// request builds a request for endpoint with a unique id and body.
func request(endpoint string, body []byte) *transport.Message {
	return &transport.Message{
		Header: map[string]string{
			metadata.Endpoint:    endpoint,
			metadata.ContentType: "application/octet-stream",
			hdrID:                newID(),
		},
		Body: body,
	}
}

// checkEcho reports how resp differs from the handler's echo of req.
func checkEcho(req, resp *transport.Message) error {
	if st := resp.Header[metadata.Status]; st != "" && st != "200" {
		return fmt.Errorf("status %q, want 200 (no %s header)", st, metadata.Status)
	}
	if !bytes.Equal(resp.Body, req.Body) {
		return fmt.Errorf("body of %d bytes differs from the %d bytes sent (%.40q vs %.40q)", len(resp.Body), len(req.Body), resp.Body, req.Body)
	}
	want := map[string]string{
		hdrID:       req.Header[hdrID],
		hdrEndpoint: req.Header[metadata.Endpoint],
		hdrCType:    req.Header[metadata.ContentType],
	}
	for k, v := range want {
		if resp.Header[k] != v {
			return fmt.Errorf("header %s = %q, want %q (response headers %v)", k, resp.Header[k], v, resp.Header)
		}
	}
	return nil
}

// listenAddr checks Listen reports the real address and Close ends Serve.
func (s *transportSuite) listenAddr(t *testing.T) {
	sv := s.serve(t, s.open(t), newTransportHandler())
	addr := sv.ln.Addr()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("Addr() = %q is not host:port: %v", addr, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		t.Errorf("Addr() = %q: port %q is not the real port bound", addr, port)
	}
	if host != "127.0.0.1" {
		t.Errorf("Addr() = %q: host %q, want 127.0.0.1 as asked", addr, host)
	}
	if err := sv.ln.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	s.waitServe(t, sv, "Close")
}

// call checks one request and its response cross with body and headers intact.
func (s *transportSuite) call(t *testing.T) {
	_, _, conn := s.setup(t)
	req := request(epEcho, []byte(`{"greeting":"héllo, 世界 🚀","bytes":"`+"\x00\x01\xff"+`"}`))
	resp, err := conn.Call(callCtx(t, s.cfg.timeout), req)
	if err != nil {
		t.Fatalf("Call: %v", err)
	}
	if err := checkEcho(req, resp); err != nil {
		t.Error(err)
	}
	// An empty body crosses too.
	req = request(epEcho, nil)
	if resp, err = conn.Call(callCtx(t, s.cfg.timeout), req); err != nil {
		t.Fatalf("Call with an empty body: %v", err)
	}
	if err := checkEcho(req, resp); err != nil {
		t.Errorf("empty body: %v", err)
	}
}

// status checks a status the handler sets comes back in Header[metadata.Status]
// of a response, not as a Call error.
func (s *transportSuite) status(t *testing.T) {
	_, _, conn := s.setup(t)
	for _, code := range []string{"404", "409", "500"} {
		req := request(epStatus, []byte(`{"code":`+code+`}`))
		req.Header[hdrStatus] = code
		resp, err := conn.Call(callCtx(t, s.cfg.timeout), req)
		if err != nil {
			t.Errorf("Call answered with %s: %v; a status is a response, not a transport error", code, err)
			continue
		}
		if got := resp.Header[metadata.Status]; got != code {
			t.Errorf("Header[%s] = %q, want %q", metadata.Status, got, code)
		}
		if !bytes.Equal(resp.Body, req.Body) {
			t.Errorf("status %s: body %q, want %q", code, resp.Body, req.Body)
		}
		if resp.Header[hdrID] != req.Header[hdrID] {
			t.Errorf("status %s: header %s = %q, want %q", code, hdrID, resp.Header[hdrID], req.Header[hdrID])
		}
	}
}

// concurrentCalls checks many calls on one Conn at once each get their own answer.
func (s *transportSuite) concurrentCalls(t *testing.T) {
	const n = 50
	_, _, conn := s.setup(t)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			req := request(epEcho, []byte(fmt.Sprintf("call %d: %s", i, bytes.Repeat([]byte{byte('a' + i%26)}, i*37))))
			resp, err := conn.Call(callCtx(t, s.cfg.timeout), req)
			if err == nil {
				err = checkEcho(req, resp)
			}
			if err != nil {
				errs <- fmt.Errorf("call %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	reportErrors(t, errs)
}

// stream checks a bidirectional stream: the header reaches the handler, every
// message is echoed in order, CloseSend gives the handler io.EOF and the
// handler's return gives the caller io.EOF.
func (s *transportSuite) stream(t *testing.T) {
	const n = 20
	h, _, conn := s.setup(t)
	header := map[string]string{metadata.Endpoint: epStream, metadata.ContentType: "application/octet-stream", hdrID: newID()}
	st := s.openStream(t, conn, header)

	sent := make(chan error, 1)
	go func() {
		for i := range n {
			if err := st.Send([]byte(fmt.Sprintf("message %d", i))); err != nil {
				sent <- fmt.Errorf("Send %d: %w", i, err)
				return
			}
		}
		sent <- st.CloseSend()
	}()
	for i := range n {
		b, err := s.recv(t, st)
		if err != nil {
			t.Fatalf("Recv %d: %v", i, err)
		}
		if want := fmt.Sprintf("message %d", i); string(b) != want {
			t.Fatalf("Recv %d = %q, want %q", i, b, want)
		}
	}
	if err := receive(t, sent, s.cfg.timeout, "the sends and CloseSend"); err != nil {
		t.Fatal(err)
	}
	got := receive(t, h.streamHeader, s.cfg.timeout, "the handler to see the stream")
	for _, k := range []string{metadata.Endpoint, hdrID} {
		if got[k] != header[k] {
			t.Errorf("handler saw header %s = %q, want %q (all: %v)", k, got[k], header[k], got)
		}
	}
	if err := receive(t, h.streamEnd, s.cfg.timeout, "the handler's Recv to end after CloseSend"); !stderrors.Is(err, io.EOF) {
		t.Errorf("handler's Recv after CloseSend = %v, want io.EOF", err)
	}
	if b, err := s.recv(t, st); !stderrors.Is(err, io.EOF) {
		t.Errorf("Recv after the handler returned = %q, %v; want io.EOF", b, err)
	}
}

// streamError checks a handler ending a stream with an *errors.Error delivers
// that error, same code, to the caller's Recv.
func (s *transportSuite) streamError(t *testing.T) {
	_, _, conn := s.setup(t)
	st := s.openStream(t, conn, map[string]string{metadata.Endpoint: epStreamFail, hdrID: newID()})
	if err := st.Send([]byte("fail, please")); err != nil {
		t.Fatalf("Send: %v", err)
	}
	b, err := s.recv(t, st)
	var e *errors.Error
	if !stderrors.As(err, &e) {
		t.Fatalf("Recv = %q, %v; want the handler's *errors.Error", b, err)
	}
	if e.Code != 409 {
		t.Errorf("Recv error code %d (%v), want the handler's 409", e.Code, e)
	}
}

// largeBody checks a 1 MiB body crosses in a call and in a stream message.
func (s *transportSuite) largeBody(t *testing.T) {
	body := make([]byte, 1<<20)
	rng := rand.NewChaCha8([32]byte{'m', 'i', 'c', 'r', 'o'})
	_, _ = rng.Read(body)
	_, _, conn := s.setup(t)
	req := request(epEcho, body)
	resp, err := conn.Call(callCtx(t, s.cfg.timeout), req)
	if err != nil {
		t.Fatalf("Call with 1 MiB: %v", err)
	}
	if err := checkEcho(req, resp); err != nil {
		t.Errorf("Call with 1 MiB: %v", err)
	}

	st := s.openStream(t, conn, map[string]string{metadata.Endpoint: epStream, hdrID: newID()})
	if err := st.Send(body); err != nil {
		t.Fatalf("Send of 1 MiB: %v", err)
	}
	got, err := s.recv(t, st)
	if err != nil {
		t.Fatalf("Recv of 1 MiB: %v", err)
	}
	if !bytes.Equal(got, body) {
		t.Errorf("stream message of %d bytes came back as %d different bytes", len(body), len(got))
	}
}

// closedAddress checks calls and streams to an address nobody serves fail.
func (s *transportSuite) closedAddress(t *testing.T) {
	sv := s.serve(t, s.open(t), newTransportHandler())
	addr := sv.ln.Addr()
	if err := sv.ln.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s.waitServe(t, sv, "Close")

	conn, err := s.open(t).Dial(callCtx(t, s.cfg.timeout), addr)
	if err == nil {
		t.Cleanup(func() { _ = conn.Close() })
		_, err = conn.Call(callCtx(t, s.cfg.timeout), request(epEcho, []byte("anyone?")))
	}
	if err == nil {
		t.Fatalf("Call to closed address %s succeeded", addr)
	}
	if s.cfg.notSent && !stderrors.Is(err, transport.ErrNotSent) {
		t.Errorf("Call to closed address %s = %v, want an error wrapping transport.ErrNotSent", addr, err)
	}
	if conn != nil {
		st, err := conn.Stream(callCtx(t, s.cfg.timeout), map[string]string{metadata.Endpoint: epStream})
		if err == nil {
			_ = st.Close()
			t.Errorf("Stream to closed address %s succeeded", addr)
		}
	}
}

// shutdown checks Shutdown waits for a call in flight, which completes, then
// returns nil, Serve returns nil, and the address takes no more calls.
func (s *transportSuite) shutdown(t *testing.T) {
	h, sv, conn := s.setup(t)
	type result struct {
		resp *transport.Message
		err  error
	}
	req := request(epSlow, []byte("finish me"))
	called := make(chan result, 1)
	go func() {
		resp, err := conn.Call(callCtx(t, 2*s.cfg.timeout), req)
		called <- result{resp, err}
	}()
	receive(t, h.slowStarted, s.cfg.timeout, "the slow call to reach the handler")

	shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*s.cfg.timeout)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- sv.ln.Shutdown(shutdownCtx) }()
	if err, ok := silent(shut, s.cfg.quiet); !ok {
		t.Fatalf("Shutdown returned (%v) while a call was in flight; it must wait for it", err)
	}
	close(h.release)

	r := receive(t, called, s.cfg.timeout, "the call in flight to finish")
	if r.err != nil {
		t.Fatalf("call in flight during Shutdown: %v", r.err)
	}
	if err := checkEcho(req, r.resp); err != nil {
		t.Errorf("call in flight during Shutdown: %v", err)
	}
	if err := receive(t, shut, s.cfg.timeout, "Shutdown to return once the call finished"); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	s.waitServe(t, sv, "Shutdown")
	if _, err := conn.Call(callCtx(t, s.cfg.timeout), request(epEcho, []byte("too late"))); err == nil {
		t.Error("a call after Shutdown returned succeeded")
	}
}

// openStream opens a stream closed when the test ends.
func (s *transportSuite) openStream(t *testing.T, conn transport.Conn, header map[string]string) transport.Stream {
	t.Helper()
	st, err := conn.Stream(t.Context(), header)
	if err != nil {
		t.Fatalf("Stream(%v): %v", header, err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// recv is st.Recv bounded by Timeout: past it the stream is closed and t fails.
func (s *transportSuite) recv(t *testing.T, st transport.Stream) ([]byte, error) {
	t.Helper()
	type result struct {
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		b, err := st.Recv()
		ch <- result{b, err}
	}()
	select {
	case r := <-ch:
		return r.b, r.err
	case <-time.After(s.cfg.timeout):
	}
	_ = st.Close()
	t.Fatalf("Recv still blocks after %v", s.cfg.timeout)
	return nil, nil
}

// transportHandler is the suite's transport.Handler; see the ep* endpoints.
type transportHandler struct {
	slowStarted  chan struct{}          // one value per epSlow call
	release      chan struct{}          // closed by the test to let epSlow answer
	streamHeader chan map[string]string // the header of every stream opened
	streamEnd    chan error             // what epStream's Recv ended with
}

func newTransportHandler() *transportHandler {
	return &transportHandler{
		slowStarted:  make(chan struct{}, 16),
		release:      make(chan struct{}),
		streamHeader: make(chan map[string]string, 16),
		streamEnd:    make(chan error, 16),
	}
}

// ServeRequest answers per endpoint; the body is copied, as a transport may reuse
// the request's buffer once ServeRequest returns.
func (h *transportHandler) ServeRequest(ctx context.Context, req *transport.Message) *transport.Message {
	endpoint := req.Header[metadata.Endpoint]
	resp := &transport.Message{
		Header: map[string]string{
			hdrID:                req.Header[hdrID],
			hdrEndpoint:          endpoint,
			hdrCType:             req.Header[metadata.ContentType],
			metadata.ContentType: req.Header[metadata.ContentType],
		},
		Body: bytes.Clone(req.Body),
	}
	switch endpoint {
	case epStatus:
		resp.Header[metadata.Status] = req.Header[hdrStatus]
		resp.Header[metadata.ContentType] = "application/json"
	case epSlow:
		offer(h.slowStarted, struct{}{})
		select {
		case <-h.release:
		case <-ctx.Done():
			resp.Header[metadata.Status] = "499"
		}
	}
	return resp
}

// ServeStream echoes every message (epStream) or fails after one (epStreamFail).
func (h *transportHandler) ServeStream(ctx context.Context, header map[string]string, st transport.Stream) error {
	copied := make(map[string]string, len(header))
	for k, v := range header {
		copied[k] = v
	}
	offer(h.streamHeader, copied)
	if header[metadata.Endpoint] == epStreamFail {
		if _, err := st.Recv(); err != nil {
			return err
		}
		return errors.Conflict("conformance", "the handler ended the stream with an error on purpose")
	}
	for {
		b, err := st.Recv()
		if err != nil {
			offer(h.streamEnd, err)
			if stderrors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := st.Send(b); err != nil {
			return err
		}
	}
}

// offer sends v on ch unless ch is full: the handler never blocks on a test that
// stopped listening.
func offer[T any](ch chan<- T, v T) {
	select {
	case ch <- v:
	default:
	}
}
