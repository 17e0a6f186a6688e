package gateway

import (
	"context"
	stderrors "errors"
	"net/http"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/microhost/micro/sdk/errors"
)

// breakers keeps one circuit breaker per backend service. It outlives
// reloads: a breaker keeps its state unless its settings change.
type breakers struct {
	metrics *metrics
	mu      sync.Mutex
	byName  map[string]*breaker
}

// breaker is one backend's gobreaker plus when it last opened, for Retry-After.
type breaker struct {
	cb       *gobreaker.TwoStepCircuitBreaker[struct{}]
	settings Breaker
	mu       sync.Mutex
	openedAt time.Time
}

func newBreakers(m *metrics) *breakers {
	return &breakers{metrics: m, byName: map[string]*breaker{}}
}

// get returns service's breaker with settings s, replacing one built with
// other settings; nil when s is disabled.
func (bs *breakers) get(service string, s Breaker) *breaker {
	if s.Disabled {
		return nil
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if b := bs.byName[service]; b != nil && b.settings == s {
		return b
	}
	b := &breaker{settings: s}
	gauge := bs.metrics.breaker.WithLabelValues(service)
	gauge.Set(breakerClosed)
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        service,
		MaxRequests: s.HalfOpenRequests,
		Timeout:     s.OpenTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= s.Failures },
		IsSuccessful: func(err error) bool {
			return err == nil || !countsAsFailure(err)
		},
		// A call its client gave up on, or one that found no node to send
		// to, says nothing about the backend.
		IsExcluded: func(err error) bool {
			return stderrors.Is(err, context.Canceled) || stderrors.Is(err, errNoNode)
		},
		OnStateChange: func(_ string, _, to gobreaker.State) {
			switch to {
			case gobreaker.StateOpen:
				b.mu.Lock()
				b.openedAt = time.Now()
				b.mu.Unlock()
				gauge.Set(breakerOpen)
			case gobreaker.StateHalfOpen:
				gauge.Set(breakerHalfOpen)
			default:
				gauge.Set(breakerClosed)
			}
		},
	})
	bs.byName[service] = b
	return b
}

// retryAfter is how long until the open breaker lets a trial call through,
// rounded up to whole seconds, at least one.
func (b *breaker) retryAfter() time.Duration {
	b.mu.Lock()
	left := b.settings.OpenTimeout - time.Since(b.openedAt)
	b.mu.Unlock()
	secs := (left + time.Second - 1) / time.Second
	return max(secs, 1) * time.Second
}

// openError is the answer of a call refused by an open breaker.
type openError struct {
	service    string
	retryAfter time.Duration
}

func (e *openError) Error() string {
	return "circuit breaker for " + e.service + " is open"
}

func (e *openError) envelope() *errors.Error {
	return errors.Unavailable("gateway", "%s is failing: its circuit breaker is open; retry after %s", e.service, e.retryAfter)
}

// countsAsFailure reports whether a call's error should count against the
// backend: server errors (5xx), timeouts and connection failures do; client
// errors (4xx) do not.
func countsAsFailure(err error) bool {
	var e *errors.Error
	if stderrors.As(err, &e) {
		return e.Code >= http.StatusInternalServerError
	}
	return true
}
