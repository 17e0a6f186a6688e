package transport

import (
	"context"
	"encoding/json"
	stderrors "errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/metadata"
)

// Paths every http listener answers besides endpoints.
const (
	HealthPath = "/healthz" // liveness: 200 while the process serves
	ReadyPath  = "/readyz"  // readiness: 503 once draining
)

// httpListener serves one bound address.
type httpListener struct {
	ln       net.Listener
	srv      *http.Server
	opts     httpOptions
	h        Handler
	draining atomic.Bool
	bufs     sync.Pool
}

func newHTTPListener(ln net.Listener, o httpOptions) *httpListener {
	l := &httpListener{ln: ln, opts: o}
	var protos http.Protocols
	protos.SetHTTP1(true)
	if o.serverTLS != nil {
		protos.SetHTTP2(true)
		l.ln = tlsListener(ln, o.serverTLS)
	} else {
		protos.SetUnencryptedHTTP2(true)
	}
	l.srv = &http.Server{
		Handler:           l,
		Protocols:         &protos,
		ReadHeaderTimeout: o.readHeader,
		IdleTimeout:       o.idle,
		MaxHeaderBytes:    1 << 20,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: 2 * h2StreamsPerConn},
	}
	return l
}

// Addr returns the bound address with its real port.
func (l *httpListener) Addr() string { return l.ln.Addr().String() }

// Serve runs until Shutdown or Close.
func (l *httpListener) Serve(h Handler) error {
	l.h = h
	if err := l.srv.Serve(l.ln); err != nil && !stderrors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown marks the listener not ready, stops accepting and waits for in-flight
// requests until ctx ends.
func (l *httpListener) Shutdown(ctx context.Context) error {
	l.draining.Store(true)
	err := l.srv.Shutdown(ctx)
	l.closeSocket()
	return err
}

// Close stops at once, even before Serve was called.
func (l *httpListener) Close() error {
	l.draining.Store(true)
	err := l.srv.Close()
	l.closeSocket()
	return err
}

// closeSocket releases the bound socket; http.Server only closes listeners that
// Serve has started using.
func (l *httpListener) closeSocket() {
	_ = l.ln.Close() // net.ErrClosed when the server closed it already
}

// ServeHTTP maps an HTTP request to a transport message and back.
func (l *httpListener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case HealthPath:
		w.WriteHeader(http.StatusOK)
		return
	case ReadyPath:
		if l.draining.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeTransportError(w, errors.MethodNotAllowed("", "%s is not allowed: call endpoints with POST /{Handler}.{Method}", r.Method))
		return
	}
	if len(r.URL.Path) < 2 {
		writeTransportError(w, errors.NotFound("", "no endpoint in the path: call POST /{Handler}.{Method}, e.g. /Greeter.Hello"))
		return
	}

	header := make(map[string]string, 8)
	for k, v := range r.Header {
		if len(v) > 0 && metadata.Propagated(k) {
			header[k] = v[0]
		}
	}
	header[metadata.Endpoint] = r.URL.Path[1:]

	ctx := r.Context()
	if r.TLS != nil {
		ctx = NewPeerContext(ctx, Peer{Addr: r.RemoteAddr, TLS: r.TLS})
	}
	if header[metadata.Stream] == "1" {
		l.serveStream(ctx, w, r, header)
		return
	}

	body, err := l.readBody(w, r)
	if err != nil {
		writeTransportError(w, err)
		return
	}
	resp := l.h.ServeRequest(ctx, &Message{Header: header, Body: body})
	// The response may be the request's body (an echo): the buffer goes back
	// to the pool once the response is written.
	defer l.putBuf(body)

	status := http.StatusOK
	wh := w.Header()
	// One backing array for every value: one allocation, not one per header.
	vals := make([]string, 0, len(resp.Header)+1)
	for k, v := range resp.Header {
		if k == metadata.Status {
			if code, err := strconv.Atoi(v); err == nil && code >= 100 && code < 600 {
				status = code
			}
			continue
		}
		vals = append(vals, v)
		wh[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	vals = append(vals, strconv.Itoa(len(resp.Body)))
	wh["Content-Length"] = vals[len(vals)-1:]
	w.WriteHeader(status)
	w.Write(resp.Body)
}

// readBody reads the whole body within the size limit and the body read
// timeout, a small one into a pooled buffer.
func (l *httpListener) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	max := l.opts.maxBodyBytes
	if r.ContentLength == 0 {
		return nil, nil
	}
	if l.opts.readBody > 0 {
		// Once the body is read, HTTP/1.1 clears the deadline itself to watch
		// for the caller going away; after a failure it stays, so discarding
		// the rest of the body cannot wait forever either.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(l.opts.readBody))
	}
	body, err := readSized(r.Body, r.ContentLength, max, l.getBuf)
	switch {
	case stderrors.Is(err, os.ErrDeadlineExceeded):
		return nil, errors.New("", http.StatusRequestTimeout, "the request body did not arrive within %s", l.opts.readBody)
	case err == ErrBodyTooLarge && r.ContentLength > max:
		return nil, errors.PayloadTooLarge("", "request body of %d bytes is over the %d byte limit; send less or raise the transport's max body size", r.ContentLength, max)
	case err == ErrBodyTooLarge:
		return nil, errors.PayloadTooLarge("", "request body is over the %d byte limit; send less or raise the transport's max body size", max)
	case err != nil:
		return nil, errors.BadRequest("", "reading the request body: %v", err)
	}
	return body, nil
}

// Small request bodies reuse buffers: the handler has finished with the body
// once its response is written (codecs copy what they keep).
const pooledBufMax = 16 << 10

func (l *httpListener) getBuf(n int) []byte {
	if n <= pooledBufMax {
		if p, ok := l.bufs.Get().(*[]byte); ok && cap(*p) >= n {
			return (*p)[:n]
		}
		return make([]byte, n, pooledBufMax)
	}
	return make([]byte, n)
}

func (l *httpListener) putBuf(b []byte) {
	if cap(b) == pooledBufMax {
		l.bufs.Put(&b)
	}
}

// writeTransportError answers with a JSON error envelope and its status.
func writeTransportError(w http.ResponseWriter, err error) {
	e := errors.FromError(err)
	b, _ := json.Marshal(e)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(metadata.Error, "1")
	w.WriteHeader(int(e.Code))
	w.Write(b)
}
