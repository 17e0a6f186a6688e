package transport

import (
	"bytes"
	"context"
	"encoding/json"
	stderrors "errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"

	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/metadata"
)

// httpConn calls one address through the transport's shared round trippers,
// bounded and measured by its pool. Once that pool is retired, calls go through
// the address's current pool instead.
type httpConn struct {
	t    *HTTP
	addr string
	pool *pool
}

// Call posts req to /{endpoint} and returns the response.
func (c *httpConn) Call(ctx context.Context, req *Message) (*Message, error) {
	p, err := c.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer p.release()

	hreq := c.newRequest(ctx, req.Header)
	hreq.Body = io.NopCloser(bytes.NewReader(req.Body))
	hreq.ContentLength = int64(len(req.Body))
	body := req.Body
	hreq.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }

	resp, err := c.t.calls.RoundTrip(hreq)
	if err != nil {
		return nil, c.wrapErr(ctx, err)
	}
	defer resp.Body.Close()

	max := c.t.opts.maxBodyBytes
	rbody, err := readSized(resp.Body, resp.ContentLength, max, nil)
	switch {
	case err == ErrBodyTooLarge && resp.ContentLength > max:
		return nil, errors.BadGateway("", "response from %s of %d bytes is over the %d byte limit", c.addr, resp.ContentLength, max)
	case err == ErrBodyTooLarge:
		return nil, errors.BadGateway("", "response from %s is over the %d byte limit", c.addr, max)
	case err != nil:
		return nil, fmt.Errorf("transport http: reading response from %s: %w", c.addr, err)
	}
	return &Message{Header: responseHeader(resp), Body: rbody}, nil
}

// Stream opens a bidirectional stream over HTTP/2.
func (c *httpConn) Stream(ctx context.Context, header map[string]string) (Stream, error) {
	p, err := c.acquire(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	hreq := c.newRequest(ctx, header)
	hreq.Header[metadata.Stream] = []string{"1"}
	hreq.Body = pr
	hreq.ContentLength = -1

	resp, err := c.t.streams.RoundTrip(hreq)
	if err != nil {
		cancel()
		p.release()
		pw.Close()
		return nil, c.wrapErr(ctx, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		defer cancel()
		defer p.release()
		pw.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, c.t.opts.maxBodyBytes))
		return nil, decodeErrorBody(resp.StatusCode, b)
	}
	// While the request body is open, the round tripper waits on it and does not
	// watch ctx: ending the body when ctx ends is what ends the stream.
	context.AfterFunc(ctx, func() { pw.CloseWithError(ctx.Err()) })
	return &clientStream{send: pw, recv: resp.Body, max: c.t.opts.maxBodyBytes, cancel: cancel, release: p.release}, nil
}

// acquire takes a call slot in the address's live pool: c's own, or the one that
// replaced it after it was retired.
func (c *httpConn) acquire(ctx context.Context) (*pool, error) {
	p := c.pool
	for {
		err := p.acquire(ctx)
		if !stderrors.Is(err, errRetired) {
			return p, err
		}
		p = c.t.live(c.addr).pool
	}
}

// Close forgets this address's pool unless a call is in it (the health loop
// forgets it once idle). Its idle connections are shared with the transport's
// other addresses and close after the pool's idle timeout.
func (c *httpConn) Close() error {
	c.t.forget(c)
	return nil
}

func (c *httpConn) newRequest(ctx context.Context, header map[string]string) *http.Request {
	// One backing array for every value: a call makes one allocation for them, not one per header.
	h := make(http.Header, len(header)+1)
	vals := make([]string, 0, len(header))
	endpoint := ""
	for k, v := range header {
		if k == metadata.Endpoint {
			endpoint = v
			continue
		}
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	r := &http.Request{
		Method:     http.MethodPost,
		URL:        &url.URL{Scheme: c.t.scheme, Host: c.addr, Path: "/" + endpoint},
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Host:       c.addr,
	}
	return r.WithContext(ctx)
}

// wrapErr marks dial failures as not sent and maps them to Unavailable, and
// reports the context's own error when it ended the call.
func (c *httpConn) wrapErr(ctx context.Context, err error) error {
	var op *net.OpError
	if stderrors.As(err, &op) && op.Op == "dial" {
		return fmt.Errorf("%w: %w", ErrNotSent, errors.Unavailable("", "cannot connect to %s: %v", c.addr, op.Err))
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("transport http: call to %s: %w", c.addr, ctxErr)
	}
	return fmt.Errorf("transport http: call to %s: %w", c.addr, err)
}

// responseHeader copies the propagated headers and records a non-200 status.
func responseHeader(resp *http.Response) map[string]string {
	h := make(map[string]string, len(resp.Header)+1)
	for k, v := range resp.Header {
		if len(v) > 0 && metadata.Propagated(k) {
			h[k] = v[0]
		}
	}
	if resp.StatusCode != http.StatusOK {
		h[metadata.Status] = strconv.Itoa(resp.StatusCode)
	}
	return h
}

// decodeErrorBody turns a non-200 answer into an *errors.Error.
func decodeErrorBody(status int, body []byte) error {
	var e errors.Error
	if err := json.Unmarshal(body, &e); err != nil || e.Code == 0 {
		return errors.New("", int32(status), "%s", bytes.TrimSpace(body))
	}
	return &e
}
