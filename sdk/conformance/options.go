package conformance

import "time"

// Defaults of the suites' options, generous enough for real backends on a busy CI
// machine while keeping a failing run bounded.
const (
	// DefaultTimeout bounds every wait for something that must happen.
	DefaultTimeout = 10 * time.Second
	// DefaultQuiet is how long a suite watches for something that must not happen.
	DefaultQuiet = 250 * time.Millisecond
	// DefaultTTL is the registration TTL the registry suite's expiry tests use.
	DefaultTTL = time.Second
)

// Option adapts a suite to a backend's limits; every suite accepts every Option
// and ignores those that do not concern it.
type Option func(*config)

// config is what the options set.
type config struct {
	timeout      time.Duration
	quiet        time.Duration
	ttl          time.Duration
	skipTTL      bool
	skipOrdering bool
	notSent      bool
}

// newConfig applies opts over the defaults.
func newConfig(opts []Option) config {
	c := config{timeout: DefaultTimeout, quiet: DefaultQuiet, ttl: DefaultTTL}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c
}

// Timeout bounds each wait for an event, delivery, answer or state change
// (default DefaultTimeout). Raise it for backends with high latency.
func Timeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// Quiet sets how long a suite waits to conclude that something does not happen,
// such as a second delivery of an acked message (default DefaultQuiet).
func Quiet(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.quiet = d
		}
	}
}

// TTL sets the registration TTL the registry suite uses to test expiry and
// refresh (default DefaultTTL); use the backend's minimum if it is longer.
func TTL(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.ttl = d
		}
	}
}

// SkipTTL skips the registry suite's TTL expiry and refresh tests, for backends
// whose minimum TTL is too long to wait for in a test.
func SkipTTL() Option { return func(c *config) { c.skipTTL = true } }

// SkipOrdering skips the broker suite's check that one subscription receives one
// publisher's messages in order, for backends that do not guarantee it.
func SkipOrdering() Option { return func(c *config) { c.skipOrdering = true } }

// ExpectNotSent makes the transport suite require that a call to an address
// nobody listens on fails with an error wrapping transport.ErrNotSent, as the
// built-in transports do, so callers know the call is safe to retry.
func ExpectNotSent() Option { return func(c *config) { c.notSent = true } }
