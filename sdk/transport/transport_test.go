package transport_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	stderrors "errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/transport"
)

// echo answers every request with its body and streams by echoing each message.
type echo struct {
	inFlight, maxInFlight atomic.Int64
	release               chan struct{} // when set, calls wait for it
}

func (e *echo) ServeRequest(ctx context.Context, req *transport.Message) *transport.Message {
	n := e.inFlight.Add(1)
	defer e.inFlight.Add(-1)
	for {
		m := e.maxInFlight.Load()
		if n <= m || e.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	if e.release != nil {
		select {
		case <-e.release:
		case <-ctx.Done():
		}
	}
	if req.Header[metadata.Endpoint] == "Echo.Fail" {
		return &transport.Message{Header: map[string]string{metadata.Status: "409", "Content-Type": "application/json"}, Body: []byte(`{"code":409}`)}
	}
	body := append([]byte(nil), req.Body...)
	return &transport.Message{Header: map[string]string{"Content-Type": req.Header["Content-Type"], "Micro-Echo-Endpoint": req.Header[metadata.Endpoint]}, Body: body}
}

func (e *echo) ServeStream(ctx context.Context, header map[string]string, s transport.Stream) error {
	for {
		b, err := s.Recv()
		if stderrors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if string(b) == "fail" {
			return errors.Conflict("echo", "asked to fail")
		}
		if err := s.Send(b); err != nil {
			return err
		}
	}
}

// serve starts a listener for h on a free loopback port.
func serve(t *testing.T, tr transport.Transport, h transport.Handler) transport.Listener {
	t.Helper()
	ln, err := tr.Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ln.Serve(h) }()
	t.Cleanup(func() {
		ln.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve returned %v", err)
		}
	})
	return ln
}

func newHTTP(t *testing.T, opts ...transport.HTTPOption) *transport.HTTP {
	t.Helper()
	tr := transport.NewHTTP(opts...)
	t.Cleanup(func() { tr.Close() })
	return tr
}

func TestCallProtocols(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	cases := []struct {
		name      string
		server    []transport.HTTPOption
		client    []transport.HTTPOption
		wantConns int // connections open after 16 concurrent calls: h2 multiplexes
	}{
		{"http1.1", nil, nil, 0},
		{"h2c", nil, []transport.HTTPOption{transport.HTTP2(true)}, 1},
		{"tls http1.1", []transport.HTTPOption{transport.ServerTLS(serverTLS)}, []transport.HTTPOption{transport.ClientTLS(clientTLS)}, 0},
		{"tls h2", []transport.HTTPOption{transport.ServerTLS(serverTLS)}, []transport.HTTPOption{transport.ClientTLS(clientTLS), transport.HTTP2(true)}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := &echo{release: make(chan struct{})}
			ln := serve(t, newHTTP(t, tc.server...), h)
			cli := newHTTP(t, tc.client...)
			conn, err := cli.Dial(context.Background(), ln.Addr())
			if err != nil {
				t.Fatal(err)
			}
			// One call first, so the protocol is settled before calls race for
			// connections (TLS learns h2 from ALPN on the first handshake).
			warm := make(chan error, 1)
			go func() {
				_, err := callEcho(conn)
				warm <- err
			}()
			waitFor(t, func() bool { return h.inFlight.Load() == 1 }, "warm-up call in flight")
			h.release <- struct{}{}
			if err := <-warm; err != nil {
				t.Fatal(err)
			}
			const calls = 16
			var wg sync.WaitGroup
			errs := make(chan error, calls)
			for i := 0; i < calls; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					body := []byte(fmt.Sprintf(`{"i":%d}`, i))
					resp, err := conn.Call(context.Background(), &transport.Message{
						Header: map[string]string{metadata.Endpoint: "Echo.Call", "Content-Type": "application/json"},
						Body:   body,
					})
					if err != nil {
						errs <- err
						return
					}
					if !bytes.Equal(resp.Body, body) || resp.Header["Micro-Echo-Endpoint"] != "Echo.Call" || resp.Header[metadata.Status] != "" {
						errs <- fmt.Errorf("call %d: got %q %v", i, resp.Body, resp.Header)
					}
				}(i)
			}
			waitFor(t, func() bool { return h.inFlight.Load() == calls }, "all calls in flight at once")
			st := cli.Stats()[0]
			if st.InUse != calls {
				t.Errorf("InUse = %d, want %d", st.InUse, calls)
			}
			if tc.wantConns > 0 && st.Open != tc.wantConns {
				t.Errorf("Open = %d, want %d (HTTP/2 multiplexes calls on one connection)", st.Open, tc.wantConns)
			}
			if tc.wantConns == 0 && st.Open != calls {
				t.Errorf("Open = %d, want %d (HTTP/1.1 needs one connection per call in flight)", st.Open, calls)
			}
			close(h.release)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

func TestErrorStatusPassesThrough(t *testing.T) {
	ln := serve(t, newHTTP(t), &echo{})
	conn, _ := newHTTP(t).Dial(context.Background(), ln.Addr())
	resp, err := conn.Call(context.Background(), &transport.Message{Header: map[string]string{metadata.Endpoint: "Echo.Fail"}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header[metadata.Status] != "409" {
		t.Fatalf("status header = %q, want 409", resp.Header[metadata.Status])
	}
}

func TestStreams(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("http2=%v", h2), func(t *testing.T) {
			ln := serve(t, newHTTP(t), &echo{})
			conn, _ := newHTTP(t, transport.HTTP2(h2)).Dial(context.Background(), ln.Addr())
			s, err := conn.Stream(context.Background(), map[string]string{metadata.Endpoint: "Echo.Stream"})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			const n = 100
			// Send and receive concurrently: both directions are live at once.
			sendErr := make(chan error, 1)
			go func() {
				for i := 0; i < n; i++ {
					if err := s.Send([]byte(fmt.Sprintf("msg-%d", i))); err != nil {
						sendErr <- err
						return
					}
				}
				sendErr <- s.CloseSend()
			}()
			for i := 0; i < n; i++ {
				b, err := s.Recv()
				if err != nil {
					t.Fatalf("recv %d: %v", i, err)
				}
				if want := fmt.Sprintf("msg-%d", i); string(b) != want {
					t.Fatalf("recv %d = %q, want %q", i, b, want)
				}
			}
			if _, err := s.Recv(); !stderrors.Is(err, io.EOF) {
				t.Fatalf("after the last message: %v, want io.EOF", err)
			}
			if err := <-sendErr; err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestStreamInterleaved(t *testing.T) {
	// A ping-pong proves full duplex: each reply arrives before the next send.
	ln := serve(t, newHTTP(t), &echo{})
	conn, _ := newHTTP(t).Dial(context.Background(), ln.Addr())
	s, err := conn.Stream(context.Background(), map[string]string{metadata.Endpoint: "Echo.Stream"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 10; i++ {
		if err := s.Send([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		b, err := s.Recv()
		if err != nil || len(b) != 1 || b[0] != byte(i) {
			t.Fatalf("ping %d: got %v %v", i, b, err)
		}
	}
	if err := s.Send([]byte("fail")); err != nil {
		t.Fatal(err)
	}
	_, err = s.Recv()
	if errors.Code(err) != http.StatusConflict {
		t.Fatalf("stream error = %v, want the handler's 409 envelope", err)
	}
}

func TestPoolLimits(t *testing.T) {
	h := &echo{release: make(chan struct{})}
	ln := serve(t, newHTTP(t), h)
	cli := newHTTP(t, transport.Pool(transport.PoolOptions{MaxOpen: 2, MaxIdle: 1, WaitTimeout: 10 * time.Second}))
	conn, _ := cli.Dial(context.Background(), ln.Addr())

	const calls = 10
	var wg sync.WaitGroup
	for i := 0; i < calls; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := callEcho(conn); err != nil {
				t.Error(err)
			}
		}()
	}
	waitFor(t, func() bool { return h.inFlight.Load() == 2 && cli.Stats()[0].Waits == calls-2 }, "two calls in flight and the rest waiting")
	st := cli.Stats()[0]
	if st.Open > 2 || st.InUse != 2 || st.MaxOpen != 2 {
		t.Errorf("stats while saturated = %+v, want Open<=2 InUse=2 MaxOpen=2", st)
	}
	close(h.release)
	wg.Wait()
	if m := h.maxInFlight.Load(); m > 2 {
		t.Errorf("server saw %d calls at once, pool allows 2", m)
	}
	st = cli.Stats()[0]
	if st.InUse != 0 || st.WaitTime <= 0 || st.Open > 2 {
		t.Errorf("stats after = %+v", st)
	}
	waitFor(t, func() bool { return cli.Stats()[0].Idle == cli.Stats()[0].Open }, "idle connections counted")
}

func TestPoolWaitTimeout(t *testing.T) {
	h := &echo{release: make(chan struct{})}
	ln := serve(t, newHTTP(t), h)
	cli := newHTTP(t, transport.Pool(transport.PoolOptions{MaxOpen: 1, WaitTimeout: 20 * time.Millisecond}))
	conn, _ := cli.Dial(context.Background(), ln.Addr())
	first := make(chan error, 1)
	go func() {
		_, err := callEcho(conn)
		first <- err
	}()
	waitFor(t, func() bool { return h.inFlight.Load() == 1 }, "first call in flight")
	_, err := callEcho(conn)
	if !stderrors.Is(err, transport.ErrNotSent) || errors.Code(err) != http.StatusServiceUnavailable {
		t.Fatalf("second call: %v, want not-sent 503", err)
	}
	if !strings.Contains(err.Error(), "exhausted") {
		t.Errorf("error %q does not say the pool is exhausted", err)
	}
	close(h.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if st := cli.Stats()[0]; st.Timeouts != 1 || st.Waits != 1 {
		t.Errorf("Timeouts, Waits = %d, %d; want 1, 1", st.Timeouts, st.Waits)
	}

	// The pool is forgotten with its Conn: its counts leave Stats but stay in
	// the transport's totals, and a new pool for the address adds to them.
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return transport.LivePools(cli) == 0 }, "the pool forgotten")
	for _, st := range cli.Stats() {
		if st.Waits != 0 || st.Timeouts != 0 {
			t.Errorf("stats after the pool was forgotten = %+v, want no waits", st)
		}
	}
	if w := cli.WaitTotals(); w.Waits != 1 || w.Timeouts != 1 || w.WaitTime <= 0 {
		t.Errorf("WaitTotals after the pool was forgotten = %+v, want the wait and timeout it had", w)
	}
	conn, _ = cli.Dial(context.Background(), ln.Addr())
	if _, err := callEcho(conn); err != nil {
		t.Fatal(err)
	}
	if w := cli.WaitTotals(); w.Waits != 1 || w.Timeouts != 1 {
		t.Errorf("WaitTotals after a call through a new pool = %+v, want the first pool's wait and timeout", w)
	}
}

func TestDialRefusedIsNotSent(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	conn, _ := newHTTP(t).Dial(context.Background(), addr)
	_, err = callEcho(conn)
	if !stderrors.Is(err, transport.ErrNotSent) || errors.Code(err) != http.StatusServiceUnavailable {
		t.Fatalf("call to a closed port: %v, want not-sent 503", err)
	}
}

func TestHealthChecksInBackground(t *testing.T) {
	tr := newHTTP(t)
	ln, err := tr.Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go ln.Serve(&echo{})
	cli := newHTTP(t, transport.HealthInterval(10*time.Millisecond))
	if _, err := cli.Dial(context.Background(), ln.Addr()); err != nil {
		t.Fatal(err)
	}
	if !cli.Healthy(ln.Addr()) {
		t.Fatal("a new address should start healthy")
	}
	ln.Close()
	waitFor(t, func() bool { return !cli.Healthy(ln.Addr()) }, "closed address reported unhealthy")
	if st := cli.Stats()[0]; st.Healthy {
		t.Errorf("Stats().Healthy = true for a closed address")
	}
}

func TestBadRequestsOverRawHTTP(t *testing.T) {
	ln := serve(t, newHTTP(t, transport.MaxBodyBytes(1024)), &echo{})
	base := "http://" + ln.Addr()
	cases := []struct {
		name   string
		method string
		path   string
		body   io.Reader
		want   int
	}{
		{"oversized body", http.MethodPost, "/Echo.Call", bytes.NewReader(make([]byte, 2048)), http.StatusRequestEntityTooLarge},
		{"oversized chunked body", http.MethodPost, "/Echo.Call", io.MultiReader(strings.NewReader(strings.Repeat("x", 2048))), http.StatusRequestEntityTooLarge},
		{"GET an endpoint", http.MethodGet, "/Echo.Call", nil, http.StatusMethodNotAllowed},
		{"no endpoint", http.MethodPost, "/", nil, http.StatusNotFound},
		{"health", http.MethodGet, transport.HealthPath, nil, http.StatusOK},
		{"ready", http.MethodGet, transport.ReadyPath, nil, http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, base+tc.path, tc.body)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want >= 400 {
				b, _ := io.ReadAll(resp.Body)
				if !strings.Contains(string(b), fmt.Sprintf(`"code":%d`, tc.want)) || resp.Header.Get("Content-Type") != "application/json" {
					t.Errorf("body %s is not the error envelope", b)
				}
			}
		})
	}
	// The server keeps serving after all of it.
	resp, err := http.Post(base+"/Echo.Call", "application/json", strings.NewReader(`{}`))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("after bad requests: %v %v", resp, err)
	}
	resp.Body.Close()
}

// callEcho makes one bodiless call of the echo endpoint through conn.
func callEcho(conn transport.Conn) (*transport.Message, error) {
	return conn.Call(context.Background(), &transport.Message{Header: map[string]string{metadata.Endpoint: "Echo.Call"}})
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// testTLS returns a server config with a self-signed loopback certificate and a
// client config trusting it.
func testTLS(t *testing.T) (*tls.Config, *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "microhost test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool}
}

func TestCloseBeforeServeReleasesTheSocket(t *testing.T) {
	ln, err := newHTTP(t).Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if c, err := net.Dial("tcp", ln.Addr()); err == nil {
		c.Close()
		t.Fatal("a closed listener still accepts connections")
	}
	if err := ln.Serve(&echo{}); err != nil {
		t.Fatalf("Serve after Close: %v, want nil", err)
	}
}

// aliasEcho answers with the very bytes of the request body.
type aliasEcho struct{ echo }

func (*aliasEcho) ServeRequest(_ context.Context, req *transport.Message) *transport.Message {
	return &transport.Message{Header: map[string]string{"Content-Type": "application/octet-stream"}, Body: req.Body}
}

// TestResponseMayBeTheRequestBody checks a handler may answer with the request
// body it was given: the listener reuses that buffer only once the response
// is written, so concurrent calls each get their own bytes back.
func TestResponseMayBeTheRequestBody(t *testing.T) {
	tr := newHTTP(t)
	ln := serve(t, tr, &aliasEcho{})
	conn, err := tr.Dial(context.Background(), ln.Addr())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				body := bytes.Repeat([]byte{byte('a' + g)}, 1+(i*97)%4000)
				resp, err := conn.Call(context.Background(), &transport.Message{Header: map[string]string{metadata.Endpoint: "Echo.Raw"}, Body: body})
				if err != nil {
					t.Errorf("call: %v", err)
					return
				}
				if !bytes.Equal(resp.Body, body) {
					t.Errorf("caller %d got %d bytes starting %q back, sent %d of %q", g, len(resp.Body), resp.Body[:min(8, len(resp.Body))], len(body), body[0])
					return
				}
			}
		})
	}
	wg.Wait()
}

// waitStream answers no stream message: it waits for its context to end.
type waitStream struct {
	echo
	ended chan struct{}
}

func (w *waitStream) ServeStream(ctx context.Context, _ map[string]string, _ transport.Stream) error {
	<-ctx.Done()
	close(w.ended)
	return nil
}

// TestStreamEndsWithItsContext checks a stream whose caller is still sending
// ends when its context does: Recv returns the context's error, Send fails,
// and the handler's context ends too.
func TestStreamEndsWithItsContext(t *testing.T) {
	tr := newHTTP(t)
	h := &waitStream{ended: make(chan struct{})}
	ln := serve(t, tr, h)
	conn, err := tr.Dial(context.Background(), ln.Addr())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	t.Cleanup(cancel)
	s, err := conn.Stream(ctx, map[string]string{metadata.Endpoint: "Echo.Wait"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	recvErr := make(chan error, 1)
	go func() {
		_, err := s.Recv()
		recvErr <- err
	}()
	select {
	case err := <-recvErr:
		if !stderrors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Recv after the deadline: %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Recv still waits long after the stream's deadline")
	}
	if err := s.Send([]byte("late")); err == nil {
		t.Error("Send after the deadline succeeded")
	}
	select {
	case <-h.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler's context did not end with the caller's")
	}
}

// floodThenReturn is a stream handler that leaves a goroutine sending to a
// caller that does not read, and returns.
type floodThenReturn struct {
	echo
	blocked chan struct{} // closed once a Send has been stuck for a while
}

func (f *floodThenReturn) ServeStream(ctx context.Context, _ map[string]string, s transport.Stream) error {
	chunk := make([]byte, 64<<10)
	sent := make(chan struct{}, 1)
	go func() {
		for {
			if err := s.Send(chunk); err != nil {
				return
			}
			select {
			case sent <- struct{}{}:
			default:
			}
		}
	}()
	// Once sends stop going through, the caller's windows are full.
	for {
		select {
		case <-sent:
		case <-time.After(200 * time.Millisecond):
			close(f.blocked)
			return errors.Conflict("flood", "done")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// TestStreamHandlerReturnsWhileASendIsStuck checks a stream ends when its
// handler returns even if another of its goroutines is stuck sending to a
// caller that stopped reading, so draining the listener does not wait for it.
func TestStreamHandlerReturnsWhileASendIsStuck(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("http2=%v", h2), func(t *testing.T) {
			h := &floodThenReturn{blocked: make(chan struct{})}
			tr := newHTTP(t)
			ln, err := tr.Listen(context.Background(), "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan error, 1)
			go func() { served <- ln.Serve(h) }()
			t.Cleanup(func() { ln.Close() })
			conn, _ := newHTTP(t, transport.HTTP2(h2)).Dial(context.Background(), ln.Addr())
			s, err := conn.Stream(context.Background(), map[string]string{metadata.Endpoint: "Flood.Stream"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			select { // the caller reads nothing
			case <-h.blocked:
			case <-time.After(20 * time.Second):
				t.Fatal("the handler never found its sends stuck")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := ln.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown with a stuck send after the handler returned: %v", err)
			}
			if err := <-served; err != nil {
				t.Fatalf("Serve: %v", err)
			}
		})
	}
}

// forgetQuickly makes the health loop forget an idle address's pool within a few
// milliseconds, so tests can race calls against it.
var forgetQuickly = []transport.HTTPOption{
	transport.HealthInterval(time.Millisecond),
	transport.Pool(transport.PoolOptions{MaxOpen: 1, IdleTimeout: time.Millisecond, WaitTimeout: 30 * time.Second}),
}

// TestForgottenPoolIsNotDoubled holds a Conn whose pool the health loop forgot and
// calls through it while fresh Dials make a new pool: the address still admits no
// more calls than one pool's cap.
func TestForgottenPoolIsNotDoubled(t *testing.T) {
	const limit = 100 // h2: MaxOpen 1 × 100 streams
	h := &echo{release: make(chan struct{})}
	ln := serve(t, newHTTP(t), h)
	cli := newHTTP(t, append([]transport.HTTPOption{transport.HTTP2(true)}, forgetQuickly...)...)
	stale, err := cli.Dial(context.Background(), ln.Addr())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return transport.LivePools(cli) == 0 }, "the idle pool forgotten")

	var wg sync.WaitGroup
	for i := 0; i < 2*limit; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			conn := stale
			if i%2 == 1 {
				c, err := cli.Dial(context.Background(), ln.Addr())
				if err != nil {
					t.Error(err)
					return
				}
				conn = c
			}
			if _, err := callEcho(conn); err != nil {
				t.Error(err)
			}
		}(i)
	}
	waiting := func() (n int64) {
		for _, s := range cli.Stats() {
			n += s.Waits
		}
		return n
	}
	waitFor(t, func() bool { return h.inFlight.Load() > limit || h.inFlight.Load()+waiting() == 2*limit }, "every call in flight or waiting")
	if n := h.inFlight.Load(); n > limit {
		t.Errorf("server saw %d calls at once, the address's pool allows %d", n, limit)
	}
	if st := cli.Stats(); len(st) != 1 || st[0].InUse != limit {
		t.Errorf("stats while saturated = %+v, want one pool with %d in use", st, limit)
	}
	close(h.release)
	wg.Wait()
}

// TestPoolChurnUnderLoad races Dials and Calls against the health loop forgetting
// and re-creating the address's pool: no call fails and the cap holds.
func TestPoolChurnUnderLoad(t *testing.T) {
	const workers, calls, rounds = 8, 20, 5
	h := &echo{}
	ln := serve(t, newHTTP(t), h)
	cli := newHTTP(t, forgetQuickly...)
	for round := 0; round < rounds; round++ {
		held := make([]transport.Conn, workers)
		for w := range held {
			c, err := cli.Dial(context.Background(), ln.Addr())
			if err != nil {
				t.Fatal(err)
			}
			held[w] = c
		}
		waitFor(t, func() bool { return transport.LivePools(cli) == 0 }, "the idle pool forgotten")
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < calls; i++ {
					conn := held[w]
					if (w+i)%2 == 1 {
						c, err := cli.Dial(context.Background(), ln.Addr())
						if err != nil {
							t.Error(err)
							return
						}
						conn = c
					}
					if _, err := callEcho(conn); err != nil {
						t.Errorf("round %d worker %d call %d: %v", round, w, i, err)
						return
					}
					if st := cli.Stats(); len(st) > 1 || (len(st) == 1 && st[0].InUse > 1) {
						t.Errorf("stats = %+v, want at most one pool with at most 1 call in use", st)
					}
				}
			}(w)
		}
		wg.Wait()
	}
	if m := h.maxInFlight.Load(); m > 1 {
		t.Errorf("server saw %d calls at once, the pool allows 1", m)
	}
}

// countingServer is a plain net/http server that answers every request 200 and
// counts the connections it has accepted and not yet closed.
type countingServer struct {
	addr string
	open atomic.Int64
}

func serveCounting(t *testing.T) *countingServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &countingServer{addr: l.Addr().String()}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Protocols: &protos,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
		}),
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				s.open.Add(1)
			case http.StateClosed, http.StateHijacked:
				s.open.Add(-1)
			}
		},
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return s
}

// call dials addr and makes one call through the connection it gets.
func call(t *testing.T, cli *transport.HTTP, addr string) transport.Conn {
	t.Helper()
	conn, err := cli.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := callEcho(conn); err != nil {
		t.Fatal(err)
	}
	return conn
}

// waitStats polls until cli's stats satisfy ok, and fails with the last ones seen.
func waitStats(t *testing.T, cli *transport.HTTP, srv *countingServer, what string, ok func(st []transport.PoolStats, serverOpen int) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var seen string // the last stats seen while the server had a connection open
	for {
		st, n := cli.Stats(), int(srv.open.Load())
		if ok(st, n) {
			return
		}
		if n > 0 {
			seen = fmt.Sprintf("; while the server had %d connections open, stats were %+v", n, st)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: stats %+v, server has %d connections open%s", what, st, n, seen)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// openMatchesServer holds when addr's one pool counts as open, all idle, the
// connections the server has open, and there are some.
func openMatchesServer(st []transport.PoolStats, serverOpen int) bool {
	return len(st) == 1 && serverOpen > 0 && st[0].Open == serverOpen && st[0].Idle == serverOpen && st[0].InUse == 0
}

// TestPoolStatsAfterConnClose counts the connections an address's pool inherits
// from the pool a closed Conn dropped, and their closing after IdleTimeout.
func TestPoolStatsAfterConnClose(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("http2=%v", h2), func(t *testing.T) {
			srv := serveCounting(t)
			cli := newHTTP(t, transport.HTTP2(h2), transport.HealthInterval(-1),
				transport.Pool(transport.PoolOptions{IdleTimeout: 300 * time.Millisecond}))
			if err := call(t, cli, srv.addr).Close(); err != nil {
				t.Fatal(err)
			}
			call(t, cli, srv.addr)
			waitStats(t, cli, srv, "the reused connection counted", openMatchesServer)
			waitStats(t, cli, srv, "idle connections closed", func(st []transport.PoolStats, n int) bool {
				return n == 0 && len(st) == 1 && st[0].Open == 0 && st[0].Idle == 0
			})
		})
	}
}

// TestPoolStatsAfterHealthLoopForgets counts the connection the health loop's
// checks kept open, while no pool has it and then in the pool made after the
// loop forgot the first one, and drops the address once it is forgotten again
// and its connection closed.
func TestPoolStatsAfterHealthLoopForgets(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("http2=%v", h2), func(t *testing.T) {
			srv := serveCounting(t)
			cli := newHTTP(t, transport.HTTP2(h2), transport.HealthInterval(5*time.Millisecond),
				transport.Pool(transport.PoolOptions{IdleTimeout: 250 * time.Millisecond}))
			call(t, cli, srv.addr)
			waitStats(t, cli, srv, "the first pool counted", openMatchesServer)
			waitStats(t, cli, srv, "the idle pool forgotten, its connection still counted", func(st []transport.PoolStats, n int) bool {
				return transport.LivePools(cli) == 0 && openMatchesServer(st, n)
			})
			call(t, cli, srv.addr)
			waitStats(t, cli, srv, "the new pool counted", func(st []transport.PoolStats, n int) bool {
				return transport.LivePools(cli) == 1 && openMatchesServer(st, n)
			})
			waitStats(t, cli, srv, "the pool forgotten and its connection closed", func(st []transport.PoolStats, n int) bool {
				return len(st) == 0 && n == 0
			})
		})
	}
}

// TestStatsReportConnectionsOutlivingTheirPool closes an address's only Conn:
// its pool goes at once, but its idle connection stays open until the idle
// timeout, and Stats reports the address until then.
func TestStatsReportConnectionsOutlivingTheirPool(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("http2=%v", h2), func(t *testing.T) {
			srv := serveCounting(t)
			cli := newHTTP(t, transport.HTTP2(h2), transport.HealthInterval(-1),
				transport.Pool(transport.PoolOptions{IdleTimeout: time.Second}))
			if err := call(t, cli, srv.addr).Close(); err != nil {
				t.Fatal(err)
			}
			waitStats(t, cli, srv, "the closed Conn's open connection counted", func(st []transport.PoolStats, n int) bool {
				return openMatchesServer(st, n) && st[0].Addr == srv.addr
			})
			waitStats(t, cli, srv, "the address gone once its connection closed", func(st []transport.PoolStats, n int) bool {
				return len(st) == 0 && n == 0
			})
		})
	}
}

// TestAddressSpellingsShareOnePool dials one endpoint with and without the
// scheme's default port: it gets one pool, reported once in Stats as host:port.
// Dial does no I/O, so the names need not resolve.
func TestAddressSpellingsShareOnePool(t *testing.T) {
	cases := []struct {
		name  string
		tls   bool
		addrs []string
		want  string
	}{
		{"http", false, []string{"svc.invalid", "svc.invalid:80"}, "svc.invalid:80"},
		{"https", true, []string{"svc.invalid:443", "svc.invalid"}, "svc.invalid:443"},
		{"ipv6", false, []string{"[::1]:80", "[::1]"}, "[::1]:80"},
		{"bare ip", false, []string{"10.0.0.1", "10.0.0.1:80"}, "10.0.0.1:80"},
		{"letter case", false, []string{"Svc.Invalid:8080", "svc.invalid:8080", "SVC.INVALID:8080"}, "svc.invalid:8080"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := []transport.HTTPOption{transport.HealthInterval(-1)}
			if tc.tls {
				opts = append(opts, transport.ClientTLS(&tls.Config{}))
			}
			cli := newHTTP(t, opts...)
			for _, addr := range tc.addrs {
				if _, err := cli.Dial(context.Background(), addr); err != nil {
					t.Fatal(err)
				}
			}
			if st := cli.Stats(); len(st) != 1 || st[0].Addr != tc.want {
				t.Errorf("Dial of %q: stats %+v, want one pool for %s", tc.addrs, st, tc.want)
			}
		})
	}
}
