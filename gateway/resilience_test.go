package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microhost/micro/gateway"
	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/registry"
)

func TestRetries(t *testing.T) {
	reg := registry.NewMemory()
	echo := &Echo{}
	startBackend(t, reg, "echo", echo)
	retry := &gateway.Retry{Attempts: 2, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}
	// The failures here would open the breaker; it has its own test.
	cfg := gateway.Config{Breaker: gateway.Breaker{Disabled: true}, Routes: []*gateway.Route{
		{Pattern: "GET /say", Service: "echo", Endpoint: "Echo.Say", Retry: retry},
		{Pattern: "POST /say", Service: "echo", Endpoint: "Echo.Say", Retry: retry},
		{Pattern: "POST /say-again", Service: "echo", Endpoint: "Echo.Say",
			Retry: &gateway.Retry{Attempts: 2, Backoff: time.Millisecond, NonIdempotent: true}},
		{Pattern: "GET /per-try", Service: "echo", Endpoint: "Echo.Say", Timeout: 10 * time.Second,
			Retry: &gateway.Retry{Attempts: 1, PerTryTimeout: 200 * time.Millisecond, Backoff: time.Millisecond}},
	}}
	_, base := startGateway(t, cfg, reg)

	for _, tc := range []struct {
		name, method, path    string
		failFirst, stallFirst int64
		status                int
		calls                 int64
	}{
		{"idempotent GET is retried", "GET", "/say?text=hi", 2, 0, 200, 3},
		{"retries stop at the limit", "GET", "/say?text=hi", 5, 0, 503, 3},
		{"POST is not retried", "POST", "/say", 1, 0, 503, 1},
		{"POST opted in is retried", "POST", "/say-again", 1, 0, 200, 2},
		{"a try over its per-try timeout is retried", "GET", "/per-try?text=x", 0, 1, 200, 2},
		{"client errors are not retried", "GET", "/say?fail=409", 0, 0, 409, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			echo.calls.Store(0)
			echo.failFirst.Store(tc.failFirst)
			echo.stallFirst.Store(tc.stallFirst)
			body := ""
			if tc.method == "POST" {
				body = `{"text":"hi"}`
			}
			r := do(t, tc.method, base+tc.path, body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if n := echo.calls.Load(); n != tc.calls {
				t.Fatalf("backend called %d times, want %d", n, tc.calls)
			}
		})
	}
	echo.failFirst.Store(0)
	echo.stallFirst.Store(0)
	if m := do(t, "GET", base+"/metrics", ""); !regexp.MustCompile(`micro_gateway_retries_total\{backend="echo"\} [1-9]`).MatchString(m.body) {
		t.Error("no retries counted in /metrics")
	}
}

// breakerState reads micro_gateway_breaker_state for backend from /metrics.
func breakerState(t *testing.T, base, backend string) int {
	t.Helper()
	m := regexp.MustCompile(`micro_gateway_breaker_state\{backend="` + backend + `"\} (\d)`).FindStringSubmatch(do(t, "GET", base+"/metrics", "").body)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func TestBreakerOpensWhenABackendDiesAndClosesAfterHalfOpenSuccesses(t *testing.T) {
	reg := registry.NewMemory()
	first := startBackend(t, reg, "echo", &Echo{instance: "first"})
	cfg := gateway.Config{
		Breaker: gateway.Breaker{Failures: 3, OpenTimeout: 200 * time.Millisecond, HalfOpenRequests: 2},
		Routes:  []*gateway.Route{{Pattern: "POST /echo", Service: "echo", Endpoint: "Echo.Say"}},
	}
	_, base := startGateway(t, cfg, reg)

	if r := do(t, "POST", base+"/echo", `{}`); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	// Client errors do not count.
	for range 5 {
		if r := do(t, "POST", base+"/echo", `{"fail":404}`); r.status != 404 {
			t.Fatalf("%d", r.status)
		}
	}
	if s := breakerState(t, base, "echo"); s != 0 {
		t.Fatalf("breaker state %d after client errors, want 0 (closed)", s)
	}

	// Kill the backend the way a crash does: its registration outlives it.
	dead := first.svc.Addr()
	first.stop()
	ctx := context.Background()
	deadNode := &registry.Service{Name: "echo", Version: "latest", Nodes: []*registry.Node{{ID: "dead", Address: dead}}}
	if err := reg.Register(ctx, deadNode, 0); err != nil {
		t.Fatal(err)
	}
	var open response
	waitFor(t, "the breaker to open", func() bool {
		open = do(t, "POST", base+"/echo", `{}`)
		return open.header.Get("Retry-After") != ""
	})
	if p := open.problem(t); open.status != 503 || !strings.Contains(p.Detail, "circuit breaker") {
		t.Fatalf("%d %+v", open.status, p)
	}
	if ra, err := strconv.Atoi(open.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q", open.header.Get("Retry-After"))
	}
	if s := breakerState(t, base, "echo"); s != 2 {
		t.Fatalf("breaker state %d, want 2 (open)", s)
	}
	if m := do(t, "GET", base+"/metrics", ""); !strings.Contains(m.body, `micro_gateway_breaker_rejections_total{backend="echo"}`) {
		t.Error("rejections not counted")
	}

	// A new instance comes up and the dead one is gone: once the open timeout
	// passes, trial calls succeed and close the breaker.
	startBackend(t, reg, "echo", &Echo{instance: "second"})
	if err := reg.Deregister(ctx, deadNode); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the breaker to close", func() bool {
		do(t, "POST", base+"/echo", `{}`)
		return breakerState(t, base, "echo") == 0
	})
	r := do(t, "POST", base+"/echo", `{}`)
	if r.status != 200 || !strings.Contains(r.body, `"instance":"second"`) {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

func TestAggregate(t *testing.T) {
	reg := registry.NewMemory()
	startBackend(t, reg, "users", Users{})
	startBackend(t, reg, "echo", &Echo{})
	parts := []*gateway.Part{
		{Name: "user", Service: "users", Endpoint: "Users.Get"},
		{Name: "echo", Service: "echo", Endpoint: "Echo.Say"},
	}
	cfg := gateway.Config{Aggregates: []*gateway.Aggregate{
		{Pattern: "GET /strict/{id}", Timeout: 300 * time.Millisecond, Parts: parts},
		{Pattern: "GET /lenient/{id}", Timeout: 300 * time.Millisecond, Partial: gateway.PartialAllow, Parts: parts},
	}}
	_, base := startGateway(t, cfg, reg)

	t.Run("every part answers: merged in declared order", func(t *testing.T) {
		r := do(t, "GET", base+"/strict/3?text=hey", "")
		if r.status != 200 || !strings.HasPrefix(r.body, `{"user":{"id":3,`) || !strings.Contains(r.body, `"echo":{"text":"hey"`) {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if r.header.Get(metadata.FailedParts) != "" {
			t.Errorf("failed parts %q", r.header.Get(metadata.FailedParts))
		}
	})
	// The echo part waits for its context: only the deadline ends it.
	t.Run("a slow part fails the whole request at the deadline", func(t *testing.T) {
		start := time.Now()
		r := do(t, "GET", base+"/strict/3?delay=ctx", "")
		p := r.problem(t)
		if r.status != 504 || r.header.Get(metadata.FailedParts) != "echo" || !strings.Contains(p.Detail, "part echo") {
			t.Fatalf("%d %s %+v", r.status, r.header.Get(metadata.FailedParts), p)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("took %s: the deadline did not hold", took)
		}
	})
	t.Run("partial policy answers with what came", func(t *testing.T) {
		r := do(t, "GET", base+"/lenient/3?delay=ctx", "")
		if r.status != 200 || r.header.Get(metadata.FailedParts) != "echo" || !strings.HasPrefix(r.body, `{"user":{"id":3,`) || strings.Contains(r.body, `"echo"`) {
			t.Fatalf("%d %q %s", r.status, r.header.Get(metadata.FailedParts), r.body)
		}
	})
	t.Run("every part failing fails even the partial policy", func(t *testing.T) {
		r := do(t, "GET", base+"/lenient/404?fail=500", "")
		if r.status != 404 || r.header.Get(metadata.FailedParts) != "user,echo" {
			t.Fatalf("%d %q %s", r.status, r.header.Get(metadata.FailedParts), r.body)
		}
	})
}

// A service nobody registered yet fails its calls before anything is sent:
// that says nothing about the backend, so its breaker stays closed and the
// first call once it is registered succeeds.
func TestUnregisteredServiceDoesNotOpenTheBreaker(t *testing.T) {
	reg := registry.NewMemory()
	cache := registry.NewCache(reg)
	t.Cleanup(func() { cache.Close() })
	cfg := gateway.Config{
		Breaker: gateway.Breaker{Failures: 3, OpenTimeout: time.Minute},
		Routes:  []*gateway.Route{{Pattern: "POST /late", Service: "late", Endpoint: "Echo.Say"}},
	}
	_, base := startGateway(t, cfg, cache)
	for range 10 {
		r := do(t, "POST", base+"/late", `{}`)
		if p := r.problem(t); r.status != 503 || !strings.Contains(p.Detail, "no instance of late") {
			t.Fatalf("%d %+v", r.status, p)
		}
	}
	startBackend(t, reg, "late", &Echo{instance: "late"})
	waitFor(t, "the registry cache to know late", func() bool {
		_, err := cache.Lookup(context.Background(), "late")
		return err == nil
	})
	if r := do(t, "POST", base+"/late", `{"text":"hi"}`); r.status != 200 || !strings.Contains(r.body, `"instance":"late"`) {
		t.Fatalf("first call after registering: %d %s", r.status, r.body)
	}
	if s := breakerState(t, base, "late"); s != 0 {
		t.Fatalf("breaker state %d, want 0 (closed)", s)
	}
}

// busyBackend answers every call 429 with Retry-After: 7 and counts them.
func busyBackend(t *testing.T, reg registry.Registry, name string) *atomic.Int64 {
	var calls atomic.Int64
	startRawBackend(t, reg, name, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set(metadata.ContentType, "application/json")
		w.Header().Set(metadata.RetryAfter, "7")
		w.WriteHeader(http.StatusTooManyRequests)
		w.Write([]byte(`{"id":"` + name + `","code":429,"status":"Too Many Requests","detail":"slow down"}`))
	})
	return &calls
}

// A 429 is the backend asking for less traffic: the gateway does not retry
// it and passes its Retry-After on, for routes and aggregates alike.
func TestBackendTooManyRequestsIsPassedOnNotRetried(t *testing.T) {
	reg := registry.NewMemory()
	calls := busyBackend(t, reg, "busy")
	retry := &gateway.Retry{Attempts: 3, Backoff: time.Millisecond}
	cfg := gateway.Config{
		Routes: []*gateway.Route{{Pattern: "GET /busy", Service: "busy", Endpoint: "Busy.Get", Retry: retry}},
		Aggregates: []*gateway.Aggregate{{Pattern: "GET /all", Parts: []*gateway.Part{
			{Name: "busy", Service: "busy", Endpoint: "Busy.Get", Retry: retry},
		}}},
	}
	_, base := startGateway(t, cfg, reg)
	for _, path := range []string{"/busy", "/all"} {
		calls.Store(0)
		r := do(t, "GET", base+path, "")
		if p := r.problem(t); r.status != 429 || p.Code != 429 || !strings.Contains(p.Detail, "slow down") {
			t.Fatalf("%s: %d %+v", path, r.status, p)
		}
		if ra := r.header.Get(metadata.RetryAfter); ra != "7" {
			t.Errorf("%s: Retry-After %q, want the backend's 7", path, ra)
		}
		if n := calls.Load(); n != 1 {
			t.Errorf("%s: backend called %d times, want 1", path, n)
		}
	}
}

func TestAggregateAnswersAnOpenBreakerWithRetryAfter(t *testing.T) {
	reg := registry.NewMemory()
	startRawBackend(t, reg, "down", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(metadata.ContentType, "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"id":"down","code":503,"status":"Service Unavailable","detail":"down"}`))
	})
	cfg := gateway.Config{
		Breaker: gateway.Breaker{Failures: 2, OpenTimeout: time.Minute},
		Aggregates: []*gateway.Aggregate{{Pattern: "GET /all", Parts: []*gateway.Part{
			{Name: "down", Service: "down", Endpoint: "Down.Get"},
		}}},
	}
	_, base := startGateway(t, cfg, reg)
	for range 2 {
		if r := do(t, "GET", base+"/all", ""); r.status != 503 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	}
	r := do(t, "GET", base+"/all", "")
	if p := r.problem(t); r.status != 503 || !strings.Contains(p.Detail, "circuit breaker") {
		t.Fatalf("%d %+v", r.status, p)
	}
	if ra, err := strconv.Atoi(r.header.Get(metadata.RetryAfter)); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q", r.header.Get(metadata.RetryAfter))
	}
}

// When the wait before another try would outlast the deadline, the gateway
// stops retrying at once: the answer arrives by the deadline, not at it, and
// carries the last try's error. The wait is jittered up to Backoff, here a
// century, so it never fits in the deadline's ten seconds.
func TestRetryStopsWhenTheDeadlineLeavesNoTimeForAnotherTry(t *testing.T) {
	reg := registry.NewMemory()
	var calls atomic.Int64
	startRawBackend(t, reg, "flaky", func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		w.Header().Set(metadata.ContentType, "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, `{"id":"flaky","code":503,"status":"Service Unavailable","detail":"try %d failed"}`, n)
	})
	const timeout = 10 * time.Second
	retry := &gateway.Retry{Attempts: 3, Backoff: 100 * 365 * 24 * time.Hour}
	cfg := gateway.Config{
		Routes: []*gateway.Route{{Pattern: "GET /flaky", Service: "flaky", Endpoint: "Flaky.Get", Timeout: timeout, Retry: retry}},
		Aggregates: []*gateway.Aggregate{{Pattern: "GET /all", Timeout: timeout, Parts: []*gateway.Part{
			{Name: "flaky", Service: "flaky", Endpoint: "Flaky.Get", Retry: retry},
		}}},
	}
	_, base := startGateway(t, cfg, reg)

	for _, tc := range []struct{ path, detail string }{
		{"/flaky", "try 1 failed"},
		{"/all", "aggregate part flaky failed: try 1 failed"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			calls.Store(0)
			start := time.Now()
			r := do(t, "GET", base+tc.path, "")
			if took := time.Since(start); took >= timeout {
				t.Fatalf("answered after %s: the gateway waited for the deadline instead of stopping", took)
			}
			if p := r.problem(t); r.status != 503 || p.Status != 503 || p.ID != "flaky" || p.Detail != tc.detail {
				t.Fatalf("%d %+v, want the last try's 503 %q", r.status, p, tc.detail)
			}
			if n := calls.Load(); n != 1 {
				t.Fatalf("backend called %d times, want 1", n)
			}
		})
	}
	if m := do(t, "GET", base+"/metrics", ""); regexp.MustCompile(`micro_gateway_retries_total\{backend="flaky"\} [1-9]`).MatchString(m.body) {
		t.Error("a retry was counted, but none was made")
	}
}
