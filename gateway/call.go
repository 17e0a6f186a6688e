package gateway

import (
	"context"
	stderrors "errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

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
	header   map[string]string // sent as is; Micro-Timeout is set per try
	body     []byte
	retry    Retry // Attempts 0: one try
	// idempotent allows retrying failures that may have reached the backend.
	idempotent bool
}

// callResult is a backend's answer: a body in its codec, or an error envelope.
type callResult struct {
	msg *transport.Message // set on success (2xx)
	err *errors.Error      // set on failure, with the status to answer
	// retryAfter is set when an open breaker refused the call.
	retryAfter time.Duration
}

// call makes c, trying again as c.retry allows, each try through the
// service's breaker. It returns once a try succeeded or no further try is
// allowed; the client's response has not started at that point, which is what
// makes retries safe to stop at any time.
func (s *state) call(ctx context.Context, c *backendCall) callResult {
	br := s.breaker(c.service)
	var tried []string
	retry := c.retry.withDefaults()
	for attempt := 0; ; attempt++ {
		msg, nodeID, err := s.try(ctx, br, c, tried, attempt)
		if err == nil {
			return callResult{msg: msg}
		}
		var open *openError
		if stderrors.As(err, &open) {
			s.metrics.rejected.WithLabelValues(c.service).Inc()
			return callResult{err: open.envelope(), retryAfter: open.retryAfter}
		}
		if attempt >= retry.Attempts || !retryable(ctx, err, c.idempotent || retry.NonIdempotent) {
			return callResult{err: toEnvelope(ctx, c, err)}
		}
		wait := backoff(retry, attempt+1)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
			return callResult{err: toEnvelope(ctx, c, err)}
		}
		if sleep(ctx, wait) != nil {
			return callResult{err: toEnvelope(ctx, c, err)}
		}
		s.metrics.retries.WithLabelValues(c.service).Inc()
		if nodeID != "" {
			tried = append(tried, nodeID)
		}
	}
}

// try makes one attempt: breaker, node, per-try deadline, call. A non-2xx
// answer comes back as its *errors.Error.
func (s *state) try(ctx context.Context, br *breaker, c *backendCall, tried []string, attempt int) (*transport.Message, string, error) {
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
	header := c.header
	if dl, ok := ctx.Deadline(); ok {
		header = cloneHeader(c.header, 1)
		header[metadata.Timeout] = time.Until(dl).String()
	}
	start := time.Now()
	ctx, header, span := s.startTry(ctx, c, header, node.Address, attempt)
	msg, err := s.send(ctx, node.Address, &transport.Message{Header: header, Body: c.body})
	status := statusOf(msg, err)
	if span != nil {
		telemetry.EndClient(span, status, err)
	}
	s.metrics.client.WithLabelValues(c.service, c.endpoint, strconv.Itoa(status)).Observe(time.Since(start).Seconds())
	if err == nil && status >= 300 {
		err = decodeEnvelope(s.codecs, c.service, msg, status)
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

// pick chooses a node of service, avoiding nodes already tried and nodes the
// transport found unhealthy, but taking any node rather than none.
func (s *state) pick(ctx context.Context, service string, tried []string) (*registry.Node, registry.Done, error) {
	services, err := s.cache.Lookup(ctx, service)
	if err != nil {
		if stderrors.Is(err, registry.ErrNotFound) {
			return nil, nil, fmt.Errorf("%w: %w", transport.ErrNotSent, errors.Unavailable("gateway", "no instance of %s is registered", service))
		}
		return nil, nil, fmt.Errorf("%w: %w", transport.ErrNotSent, errors.Unavailable("gateway", "looking up %s: %v", service, err))
	}
	exclude := tried
	if hr, ok := s.transport.(transport.HealthReporter); ok {
		for _, svc := range services {
			for _, n := range svc.Nodes {
				if !hr.Healthy(n.Address) {
					exclude = append(exclude[:len(exclude):len(exclude)], n.ID)
				}
			}
		}
	}
	var node *registry.Node
	var done registry.Done
	if len(exclude) > 0 {
		node, done, err = s.selector.Select(services, registry.Exclude(exclude...))
	}
	if node == nil {
		node, done, err = s.selector.Select(services)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", transport.ErrNotSent, errors.Unavailable("gateway", "no node of %s can take the call: %v", service, err))
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
// not an envelope.
func decodeEnvelope(cs *codec.Set, service string, msg *transport.Message, status int) error {
	c, err := cs.ForContentType(msg.Header[metadata.ContentType], msg.Body)
	if err == nil {
		var e errors.Error
		if c.Unmarshal(msg.Body, &e) == nil && e.Code != 0 {
			if e.ID == "" {
				e.ID = service
			}
			return &e
		}
	}
	return errors.New(service, int32(status), "%s answered %d without an error envelope", service, status)
}

func isEnvelope(err error) bool {
	var e *errors.Error
	return stderrors.As(err, &e) && !stderrors.Is(err, transport.ErrNotSent)
}

// retryable reports whether another try may succeed: always for calls that
// were never sent; for others only when idempotent and the failure was
// unavailable, a timeout, a bad gateway or a connection failure; never once
// the client went away.
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
		return errors.Retryable(e)
	}
	return true // a transport failure: connection reset, per-try timeout
}

// toEnvelope is the error a failed call answers with.
func toEnvelope(ctx context.Context, c *backendCall, err error) *errors.Error {
	var e *errors.Error
	if stderrors.As(err, &e) {
		return e
	}
	if stderrors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		return errors.Timeout("gateway", "%s %s did not answer in time: %v", c.service, c.endpoint, err)
	}
	return errors.Unavailable("gateway", "%s %s: %v", c.service, c.endpoint, err)
}

// backoff is the jittered wait before try n (1 for the first retry): a random
// time up to min(Backoff·2ⁿ⁻¹, MaxBackoff) ("full jitter").
func backoff(r Retry, n int) time.Duration {
	d := r.MaxBackoff
	if n < 32 {
		if b := r.Backoff << (n - 1); b > 0 && b < d {
			d = b
		}
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
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

// cloneHeader copies h with room for extra more entries.
func cloneHeader(h map[string]string, extra int) map[string]string {
	out := make(map[string]string, len(h)+extra)
	for k, v := range h {
		out[k] = v
	}
	return out
}
