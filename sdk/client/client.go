// Package client calls services by name: it resolves them through the registry
// cache and a selector, encodes with a codec, applies per-call timeouts, propagates
// deadlines and metadata, and retries what is safe to retry.
package client

import (
	"context"
	stderrors "errors"
	"fmt"
	"strconv"
	"time"

	"github.com/microhost/micro/sdk/codec"
	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/registry"
	"github.com/microhost/micro/sdk/telemetry"
	"github.com/microhost/micro/sdk/transport"
)

// Request is one call as middleware sees it.
type Request struct {
	Service  string
	Endpoint string // Handler.Method
	Body     any    // the request value to encode
	// Header is the outgoing metadata; middleware may add to it.
	Header metadata.MD

	opts *callOptions
}

// Handler performs a call and decodes the response into rsp.
type Handler func(ctx context.Context, req *Request, rsp any) error

// Middleware wraps a Handler, e.g. for auth tokens, tracing or metrics.
type Middleware func(Handler) Handler

// Client calls services. It is safe for concurrent use.
type Client struct {
	opts      options
	cache     *registry.Cache
	ownsCache bool
	ownsTrans bool
	budget    *retryBudget
	chain     Handler
	metrics   *telemetry.RPCMetrics
}

// New returns a client. Without a Registry option it can only call with
// WithAddress.
func New(opts ...Option) *Client {
	o := options{
		timeout: DefaultTimeout,
		retries: DefaultRetries,
		backoff: JitteredBackoff(10*time.Millisecond, time.Second),
		budget:  0.2,
	}
	for _, opt := range opts {
		opt(&o)
	}
	c := &Client{opts: o}
	if o.transport == nil {
		c.opts.transport = transport.NewHTTP()
		c.ownsTrans = true
	}
	if o.codec == nil {
		c.opts.codec = codec.JSON()
	}
	if o.codecs == nil {
		c.opts.codecs = codec.DefaultSet()
	}
	if o.selector == nil {
		c.opts.selector = registry.RoundRobin()
	}
	switch r := o.registry.(type) {
	case nil:
	case *registry.Cache:
		c.cache = r
	default:
		c.cache = registry.NewCache(r)
		c.ownsCache = true
	}
	c.budget = newRetryBudget(o.budget)
	c.initTelemetry()
	c.chain = c.invoke
	for i := len(o.middleware) - 1; i >= 0; i-- {
		c.chain = o.middleware[i](c.chain)
	}
	return c
}

// Close releases what the client created itself (its cache and transport).
func (c *Client) Close() error {
	if c.ownsCache {
		c.cache.Close()
	}
	if c.ownsTrans {
		return c.opts.transport.Close()
	}
	return nil
}

// Call invokes service's endpoint ("Handler.Method") with req and decodes the
// answer into rsp. Application errors come back as *errors.Error with the
// server's status.
func (c *Client) Call(ctx context.Context, service, endpoint string, req, rsp any, opts ...CallOption) error {
	co := callOptions{timeout: c.opts.timeout, retries: c.opts.retries, codec: c.opts.codec}
	for _, opt := range opts {
		opt(&co)
	}
	md, _ := metadata.FromOutgoingContext(ctx)
	r := &Request{Service: service, Endpoint: endpoint, Body: req, opts: &co}
	if len(md) > 0 {
		r.Header = md.Copy()
	} else {
		r.Header = metadata.MD{}
	}
	if co.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, co.timeout)
		defer cancel()
	}
	return c.chain(ctx, r, rsp)
}

// invoke is the innermost handler: encode, then try nodes until one answers or
// retrying is no longer allowed.
func (c *Client) invoke(ctx context.Context, req *Request, rsp any) error {
	co := req.opts
	if co == nil { // a Request built by middleware
		co = &callOptions{timeout: c.opts.timeout, retries: c.opts.retries, codec: c.opts.codec}
	}
	body, err := co.codec.Marshal(req.Body)
	if err != nil {
		return errors.BadRequest(req.Service, "encoding the %s request for %s: %v", co.codec.Name(), req.Endpoint, err)
	}
	header := c.header(ctx, req, co)
	c.budget.deposit()

	var tried []string
	for attempt := 0; ; attempt++ {
		node, done, services, err := c.pick(ctx, req.Service, co, tried)
		if err != nil {
			return envelope(ctx, req, err)
		}
		if dl, ok := ctx.Deadline(); ok {
			left := time.Until(dl)
			if left <= 0 {
				done(context.DeadlineExceeded)
				return notSent(errors.Timeout(req.Service, "%s %s: the deadline passed before the call was sent", req.Service, req.Endpoint))
			}
			header[metadata.Timeout] = left.String()
		}
		err = c.try(ctx, req, attempt, node.Address, header, body, rsp, co)
		done(err)
		if err == nil {
			return nil
		}
		if !c.shouldRetry(ctx, err, attempt, co, services, req.Endpoint) {
			return envelope(ctx, req, err)
		}
		tried = append(tried, node.ID)
		if sleep(ctx, c.opts.backoff(attempt+1)) != nil {
			return envelope(ctx, req, err)
		}
	}
}

// envelope turns a transport failure into the error envelope callers expect; an
// application error passes through as the server sent it. A call that reached no
// server keeps transport.ErrNotSent, so its caller knows it may try it again.
func envelope(ctx context.Context, req *Request, err error) error {
	var e *errors.Error
	if stderrors.As(err, &e) {
		if stderrors.Is(err, transport.ErrNotSent) {
			return fmt.Errorf("%w: %w", transport.ErrNotSent, e)
		}
		return e
	}
	switch ctxErr := ctx.Err(); {
	case stderrors.Is(ctxErr, context.Canceled):
		return errors.New(req.Service, errors.StatusClientClosed, "%s %s: %v", req.Service, req.Endpoint, err)
	case ctxErr != nil:
		return errors.Timeout(req.Service, "%s %s: %v", req.Service, req.Endpoint, err)
	}
	return errors.Unavailable(req.Service, "%s %s: %v", req.Service, req.Endpoint, err)
}

// header builds the wire metadata of a call once; tries share it.
func (c *Client) header(ctx context.Context, req *Request, co *callOptions) map[string]string {
	h := make(map[string]string, len(req.Header)+6)
	for k, v := range req.Header {
		h[k] = v
	}
	h[metadata.Service] = req.Service
	h[metadata.Endpoint] = req.Endpoint
	// No Accept unless middleware set one: servers answer in the request's codec.
	h[metadata.ContentType] = co.codec.ContentType()
	if c.opts.from != "" {
		h[metadata.From] = c.opts.from
	}
	return h
}

// pick chooses a node: the fixed address, or one from the cache as SelectNode
// chooses it.
func (c *Client) pick(ctx context.Context, service string, co *callOptions, tried []string) (*registry.Node, registry.Done, []*registry.Service, error) {
	if co.address != "" {
		return &registry.Node{ID: co.address, Address: co.address}, noopDone, nil, nil
	}
	if c.cache == nil {
		return nil, nil, nil, notSent(errors.Unavailable(service, "cannot call %s: the client has no registry; pass client.Registry(...) or call WithAddress", service))
	}
	services, err := c.cache.Lookup(ctx, service)
	if err != nil {
		switch {
		case stderrors.Is(err, registry.ErrNotFound):
			return nil, nil, nil, notSent(errors.Unavailable(service, "no instance of %s is registered; start it or check the registry (%s)", service, c.cache.Name()))
		case ctx.Err() != nil:
			return nil, nil, nil, fmt.Errorf("%w: looking up %s: %w", transport.ErrNotSent, service, err)
		}
		return nil, nil, nil, notSent(errors.Unavailable(service, "looking up %s: %v", service, err))
	}
	node, done, err := SelectNode(c.opts.selector, c.opts.transport, services, tried, co.filters...)
	if err != nil {
		return nil, nil, nil, notSent(errors.Unavailable(service, "no node of %s can take the call: %v", service, err))
	}
	return node, done, services, nil
}

// notSent marks e as a failure before the call left this process.
func notSent(e *errors.Error) error { return fmt.Errorf("%w: %w", transport.ErrNotSent, e) }

func noopDone(error) {}

// callNode makes one try against addr and decodes the answer.
func (c *Client) callNode(ctx context.Context, addr string, header map[string]string, body []byte, rsp any, co *callOptions) error {
	conn, err := c.opts.transport.Dial(ctx, addr)
	if err != nil {
		return notSent(errors.Unavailable("", "dialing %s: %v", addr, err))
	}
	resp, err := conn.Call(ctx, &transport.Message{Header: header, Body: body})
	if err != nil {
		return err
	}
	if co.respHeader != nil {
		*co.respHeader = metadata.MD(resp.Header)
	}
	status := resp.Header[metadata.Status]
	rc, err := c.opts.codecs.ForContentType(resp.Header[metadata.ContentType], resp.Body)
	if err != nil {
		if code, _ := strconv.Atoi(status); code >= 400 && code < 600 {
			// An error answer from something in between (a proxy's plain-text
			// 503, say): its status still says what happened.
			return errors.New(header[metadata.Service], int32(code), "%s answered %d with a body no codec reads: %v", addr, code, err)
		}
		return errors.BadGateway(header[metadata.Service], "%s answered with a body no codec reads: %v", addr, err)
	}
	if status != "" {
		code, _ := strconv.Atoi(status)
		var e errors.Error
		if err := rc.Unmarshal(resp.Body, &e); err != nil || e.Code == 0 {
			return errors.New(header[metadata.Service], int32(code), "%s answered %d without an error envelope", addr, code)
		}
		return &e
	}
	if rsp == nil {
		return nil
	}
	if err := rc.Unmarshal(resp.Body, rsp); err != nil {
		return errors.BadGateway(header[metadata.Service], "decoding the %s response of %s: %v", rc.Name(), header[metadata.Endpoint], err)
	}
	return nil
}

// shouldRetry decides whether another try is allowed: never once ctx is done; always
// for failures before sending; for other retryable failures only when the call is
// idempotent (by option or endpoint registration); always within the retry budget.
func (c *Client) shouldRetry(ctx context.Context, err error, attempt int, co *callOptions, services []*registry.Service, endpoint string) bool {
	if attempt >= co.retries || ctx.Err() != nil {
		return false
	}
	notSent := stderrors.Is(err, transport.ErrNotSent)
	if !notSent {
		var env *errors.Error
		transportFailure := !stderrors.As(err, &env)
		if !transportFailure && !errors.Retryable(err) {
			return false
		}
		if !co.idempotent && !endpointIdempotent(services, endpoint) {
			return false
		}
	}
	return c.budget.withdraw()
}

func endpointIdempotent(services []*registry.Service, endpoint string) bool {
	for _, s := range services {
		for _, ep := range s.Endpoints {
			if ep.Name == endpoint {
				return ep.Metadata["idempotent"] == "true"
			}
		}
	}
	return false
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
