package gateway

import (
	"context"
	stderrors "errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/microhost/micro/sdk/client"
	"github.com/microhost/micro/sdk/codec"
	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/registry"
	"github.com/microhost/micro/sdk/telemetry"
	"github.com/microhost/micro/sdk/transport"
)

// backendCall is one call the gateway makes for a request: the message to send
// and how to retry it.
type backendCall struct {
	service  string
	endpoint string
	header   map[string]string // each try sets Micro-Timeout and its trace context in it; a retry in a copy
	body     []byte
	retry    Retry // Attempts 0: one try
	// idempotent allows retrying failures that may have reached the backend;
	// call also allows it for endpoints the service registered idempotent.
	idempotent bool
	// dynamic says the endpoint name came from the request (a templated
	// route): metrics then name it only when the service registers it.
	dynamic bool
}

// otherEndpoint is the metrics label of an endpoint a request named that its
// service does not register, so made-up names cannot grow the series.
const otherEndpoint = "_other"

// callResult is a backend's answer: a body in its codec, or an error envelope.
type callResult struct {
	msg *transport.Message // set on success (2xx)
	err *errors.Error      // set on failure, with the status to answer
	// retryAfter is the Retry-After value to answer an error with: an open
	// breaker's, or the backend's own.
	retryAfter string
}

// errNoNode marks a call that found no node to send to (nothing registered,
// or the selector refused): it never reached a backend, so the breaker does
// not count it.
var errNoNode = stderrors.New("no node to call")

// noNode is the error of a call that found no node: not sent, and e to answer.
func noNode(e *errors.Error) error {
	return fmt.Errorf("%w (%w): %w", transport.ErrNotSent, errNoNode, e)
}

// answerError is a backend's non-2xx answer with the Retry-After it sent.
type answerError struct {
	env        *errors.Error
	retryAfter string
}

func (e *answerError) Error() string { return e.env.Error() }
func (e *answerError) Unwrap() error { return e.env }

// call makes c, trying again as c.retry allows, each try through the
// service's breaker. It returns once a try succeeded or no further try is
// allowed; the client's response has not started at that point, which is what
// makes retries safe to stop at any time.
//
// The service is resolved first: a name no service is registered under (a
// templated route lets clients make names up) answers 503 before a breaker or
// a metric series exists for it.
func (s *state) call(ctx context.Context, c *backendCall) callResult {
	services, e := s.resolve(ctx, c.service)
	if e != nil {
		return callResult{err: e}
	}
	ep := findEndpoint(services, c.endpoint)
	if p := s.backends[c.service]; p != nil && c.dynamic && ep == nil && registersEndpoints(services) {
		// The backend would answer with the list of its endpoints, blocked
		// ones included: refuse it as a blocked call instead.
		return callResult{err: p.refuse(c.service, c.endpoint)}
	}
	c.idempotent = c.idempotent || ep != nil && ep.Metadata["idempotent"] == "true"
	label := c.endpoint
	if c.dynamic && ep == nil {
		label = otherEndpoint
	}
	br := s.breaker(c.service)
	var tried []string
	retry := c.retry.withDefaults()
	for attempt := 0; ; attempt++ {
		msg, nodeID, err := s.try(ctx, br, c, label, tried, attempt)
		if err == nil {
			return callResult{msg: msg}
		}
		var open *openError
		if stderrors.As(err, &open) {
			s.metrics.rejected.WithLabelValues(c.service).Inc()
			return callResult{err: open.envelope(), retryAfter: strconv.Itoa(int(open.retryAfter / time.Second))}
		}
		if attempt >= retry.Attempts || !retryable(ctx, err, c.idempotent || retry.NonIdempotent) {
			return s.failed(ctx, c, err)
		}
		wait := client.JitteredBackoff(retry.Backoff, retry.MaxBackoff)(attempt + 1)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
			return s.failed(ctx, c, err)
		}
		if sleep(ctx, wait) != nil {
			return s.failed(ctx, c, err)
		}
		s.metrics.retries.WithLabelValues(c.service).Inc()
		if nodeID != "" {
			tried = append(tried, nodeID)
		}
	}
}

// failed is the result of a call that ended with err: its envelope, and the
// backend's Retry-After when it sent one.
func (s *state) failed(ctx context.Context, c *backendCall, err error) callResult {
	res := callResult{err: s.toEnvelope(ctx, c, err)}
	var ae *answerError
	if stderrors.As(err, &ae) {
		res.retryAfter = ae.retryAfter
	}
	return res
}

// resolve looks service up, answering 503 when nothing is registered under
// its name. The registry cache answers only with services registered under
// exactly that name, so "USERS" cannot reach the service "users" past its
// backend policy even where the registry ignores case.
func (s *state) resolve(ctx context.Context, service string) ([]*registry.Service, *errors.Error) {
	services, err := s.cache.Lookup(ctx, service)
	switch {
	case stderrors.Is(err, registry.ErrNotFound):
		return nil, errors.Unavailable("gateway", "no instance of %s is registered", service)
	case err != nil:
		// The registry's error may name its own address: it goes to the log.
		s.g.logf("service lookup failed", "service", service, "error", err.Error())
		return nil, errors.Unavailable("gateway", "looking up %s failed", service)
	}
	return services, nil
}

// registersEndpoints reports whether the service publishes its endpoints.
func registersEndpoints(services []*registry.Service) bool {
	return slices.ContainsFunc(services, func(svc *registry.Service) bool { return len(svc.Endpoints) > 0 })
}

// findEndpoint returns the registered description of an endpoint, or nil.
func findEndpoint(services []*registry.Service, endpoint string) *registry.Endpoint {
	for _, s := range services {
		for _, ep := range s.Endpoints {
			if ep.Name == endpoint {
				return ep
			}
		}
	}
	return nil
}

// try makes one attempt: breaker, node, per-try deadline, call. A non-2xx
// answer comes back as an *answerError; label names the endpoint in metrics.
func (s *state) try(ctx context.Context, br *breaker, c *backendCall, label string, tried []string, attempt int) (*transport.Message, string, error) {
	done := func(error) {}
	if br != nil {
		d, err := br.cb.Allow()
		if err != nil {
			return nil, "", &openError{service: c.service, retryAfter: br.retryAfter()}
		}
		done = d
	}
	node, selDone, err := s.pick(ctx, c.service, tried)
	if err != nil {
		done(err)
		return nil, "", err
	}
	if pt := c.retry.PerTryTimeout; pt > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, pt)
		defer cancel()
	}
	// Each try writes its deadline (and below, its trace context) into the
	// call's header. A transport may still hold an earlier try's message
	// after that try returned (one that timed out while queued or being
	// written, say), so a retry writes into a copy, never into that message.
	if attempt > 0 {
		c.header = maps.Clone(c.header)
	}
	if dl, ok := ctx.Deadline(); ok {
		c.header[metadata.Timeout] = time.Until(dl).String()
	} else {
		delete(c.header, metadata.Timeout)
	}
	start := time.Now()
	ctx, span := s.startTry(ctx, c, node.Address, attempt)
	msg, err := s.send(ctx, node.Address, &transport.Message{Header: c.header, Body: c.body})
	status := statusOf(msg, err)
	span.End(status, err)
	s.metrics.client.WithLabelValues(c.service, label, telemetry.StatusText(status)).Observe(time.Since(start).Seconds())
	if err == nil && status >= 300 {
		err = &answerError{env: decodeEnvelope(s.codecs, c.service, msg, status), retryAfter: msg.Header[metadata.RetryAfter]}
		msg = nil
	}
	if err != nil && ctx.Err() != nil && !isEnvelope(err) {
		err = fmt.Errorf("%w: %w", ctx.Err(), err) // the deadline, not the symptom
	}
	selDone(err)
	done(err)
	return msg, node.ID, err
}

// send dials addr through the transport's pool and makes one call.
func (s *state) send(ctx context.Context, addr string, m *transport.Message) (*transport.Message, error) {
	conn, err := s.transport.Dial(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", transport.ErrNotSent, errors.Unavailable("gateway", "dialing %s: %v", addr, err))
	}
	return conn.Call(ctx, m)
}

// pick chooses a node of service as client.SelectNode does: avoiding nodes
// already tried and nodes the transport found unhealthy, but taking any node
// rather than none.
func (s *state) pick(ctx context.Context, service string, tried []string) (*registry.Node, registry.Done, error) {
	services, e := s.resolve(ctx, service)
	if e != nil {
		return nil, nil, noNode(e)
	}
	node, done, err := client.SelectNode(s.selector, s.transport, services, tried)
	if err != nil {
		return nil, nil, noNode(errors.Unavailable("gateway", "no node of %s can take the call: %v", service, err))
	}
	return node, done, nil
}

// statusOf is the HTTP status of a try, for metrics.
func statusOf(msg *transport.Message, err error) int {
	if err != nil {
		var e *errors.Error
		if stderrors.As(err, &e) {
			return int(e.Code)
		}
		if stderrors.Is(err, context.DeadlineExceeded) {
			return http.StatusGatewayTimeout
		}
		return http.StatusServiceUnavailable
	}
	if st := msg.Header[metadata.Status]; st != "" {
		if n, err := strconv.Atoi(st); err == nil {
			return n
		}
		return http.StatusBadGateway
	}
	return http.StatusOK
}

// decodeEnvelope reads a backend's error answer, or makes one when the body is
// not an envelope. An answer that is neither a success nor an error (a
// redirect, say) is a 502: the gateway has nothing to pass on.
func decodeEnvelope(cs *codec.Set, service string, msg *transport.Message, status int) *errors.Error {
	if !isErrorStatus(int32(status)) {
		return errors.BadGateway("gateway", "%s answered %d, which is neither a success nor an error", service, status)
	}
	c, err := cs.ForContentType(msg.Header[metadata.ContentType], msg.Body)
	if err == nil {
		var e errors.Error
		if c.Unmarshal(msg.Body, &e) == nil && e.Code != 0 {
			if !isErrorStatus(e.Code) {
				return errors.BadGateway("gateway", "%s answered %d with an error envelope of code %d", service, status, e.Code)
			}
			if e.ID == "" {
				e.ID = service
			}
			return &e
		}
	}
	return errors.New(service, int32(status), "%s answered %d without an error envelope", service, status)
}

// isErrorStatus reports whether code is an HTTP client or server error.
func isErrorStatus(code int32) bool { return code >= 400 && code <= 599 }

// retryableStatus reports whether a backend's answer may differ on another
// try: 502, 503 and 504. A 429 is the backend asking for less traffic, so
// the gateway passes it on with its Retry-After instead of trying again.
func retryableStatus(code int32) bool {
	switch code {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

func isEnvelope(err error) bool {
	var e *errors.Error
	return stderrors.As(err, &e) && !stderrors.Is(err, transport.ErrNotSent)
}

// retryable reports whether another try may succeed: always for calls that
// were never sent; for others only when idempotent and the failure was
// unavailable (503), a timeout (504), a bad gateway (502) or a connection
// failure; never once the client went away.
func retryable(ctx context.Context, err error, idempotent bool) bool {
	if stderrors.Is(ctx.Err(), context.Canceled) || stderrors.Is(err, context.Canceled) {
		return false
	}
	if ctx.Err() != nil {
		return false
	}
	if stderrors.Is(err, transport.ErrNotSent) {
		return true
	}
	if !idempotent {
		return false
	}
	var e *errors.Error
	if stderrors.As(err, &e) {
		return retryableStatus(e.Code)
	}
	return true // a transport failure: connection reset, per-try timeout
}

// toEnvelope is the error a failed call answers with. The backend's own
// answers and the gateway's errors pass on as they are; what a transport says
// (its errors have no ID) names the backend's address, so the client is told
// only which call failed and how, and the log gets the rest.
func (s *state) toEnvelope(ctx context.Context, c *backendCall, err error) *errors.Error {
	var e *errors.Error
	if stderrors.As(err, &e) && e.ID != "" {
		return e
	}
	s.g.logf("backend call failed", "service", c.service, "endpoint", c.endpoint, "error", err.Error())
	switch {
	case e != nil && isErrorStatus(e.Code):
		return errors.New("gateway", e.Code, "calling %s %s failed", c.service, c.endpoint)
	case stderrors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
		return errors.Timeout("gateway", "%s %s did not answer in time", c.service, c.endpoint)
	}
	return errors.Unavailable("gateway", "calling %s %s failed", c.service, c.endpoint)
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
