package client

import (
	"time"

	"github.com/microhost/micro/sdk/codec"
	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/registry"
	"github.com/microhost/micro/sdk/telemetry"
	"github.com/microhost/micro/sdk/transport"
)

// Defaults for calls that set nothing.
const (
	DefaultTimeout = 5 * time.Second
	DefaultRetries = 2
)

// Option configures a Client.
type Option func(*options)

type options struct {
	registry   registry.Registry
	transport  transport.Transport
	codec      codec.Codec
	codecs     *codec.Set
	selector   registry.Selector
	timeout    time.Duration
	retries    int
	backoff    Backoff
	budget     float64
	middleware []Middleware
	from       string
	tel        *telemetry.Telemetry
}

// Registry sets where services are looked up. A *registry.Cache is used as is;
// any other registry gets a cache the client owns and closes.
func Registry(r registry.Registry) Option { return func(o *options) { o.registry = r } }

// Transport sets the transport calls go over (default: the built-in http).
func Transport(t transport.Transport) Option { return func(o *options) { o.transport = t } }

// Codec sets the codec requests are encoded with (default json).
func Codec(c codec.Codec) Option { return func(o *options) { o.codec = c } }

// Codecs sets the codecs responses may come back in (default json + msgpack).
func Codecs(s *codec.Set) Option { return func(o *options) { o.codecs = s } }

// Selector sets how a node is chosen among a service's nodes (default round robin).
func Selector(s registry.Selector) Option { return func(o *options) { o.selector = s } }

// Timeout sets the default per-call timeout.
func Timeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// Retries sets how many times a failed call may be tried again (default 2).
func Retries(n int) Option { return func(o *options) { o.retries = n } }

// WithBackoff sets the wait between tries.
func WithBackoff(b Backoff) Option { return func(o *options) { o.backoff = b } }

// RetryBudget caps retries to this fraction of calls (default 0.2), so a failing
// backend is not hit with a retry storm.
func RetryBudget(ratio float64) Option { return func(o *options) { o.budget = ratio } }

// WithMiddleware appends client middleware; the first given is the outermost.
func WithMiddleware(mw ...Middleware) Option {
	return func(o *options) { o.middleware = append(o.middleware, mw...) }
}

// Telemetry records a CLIENT span and the request duration histogram for every
// try of a call, and sends the try's trace context to the callee; nil (the
// default) records nothing and forwards the caller's trace context as is.
func Telemetry(t *telemetry.Telemetry) Option { return func(o *options) { o.tel = t } }

// From names the calling service; it is sent as metadata.From.
func From(name string) Option { return func(o *options) { o.from = name } }

// CallOption tunes one call.
type CallOption func(*callOptions)

type callOptions struct {
	timeout    time.Duration
	retries    int
	idempotent bool
	address    string
	codec      codec.Codec
	filters    []registry.SelectOption
	respHeader *metadata.MD
}

// WithTimeout sets this call's timeout (all tries together).
func WithTimeout(d time.Duration) CallOption { return func(o *callOptions) { o.timeout = d } }

// WithRetries sets how many times this call may be tried again.
func WithRetries(n int) CallOption { return func(o *callOptions) { o.retries = n } }

// Idempotent declares this call safe to retry after it may have reached a server.
// Endpoints registered idempotent are retried without it.
func Idempotent() CallOption { return func(o *callOptions) { o.idempotent = true } }

// WithAddress calls addr directly, bypassing the registry.
func WithAddress(addr string) CallOption { return func(o *callOptions) { o.address = addr } }

// WithCodec encodes this call's request with c.
func WithCodec(c codec.Codec) CallOption { return func(o *callOptions) { o.codec = c } }

// WithSelectOption filters the nodes this call may go to (version, metadata).
func WithSelectOption(opts ...registry.SelectOption) CallOption {
	return func(o *callOptions) { o.filters = append(o.filters, opts...) }
}

// ResponseHeader stores the metadata the server sent back in md.
func ResponseHeader(md *metadata.MD) CallOption { return func(o *callOptions) { o.respHeader = md } }
