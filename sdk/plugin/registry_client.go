package plugin

import (
	"context"
	stderrors "errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/microhost/micro/sdk/errors"
	pluginv1 "github.com/microhost/micro/sdk/plugin/proto/micro/plugin/v1"
	"github.com/microhost/micro/sdk/registry"
)

// registryClient is registry.Registry over a registry plugin's gRPC connection:
// the host side of the registry kind.
type registryClient struct {
	name string
	conn Conn
}

var _ registry.Registry = (*registryClient)(nil)

// NewRegistryClient returns the registry served by the plugin behind conn, named
// name. Each call uses the connection current at that moment and fails fast with
// conn's 503 error while the plugin is down. Watchers are not re-opened after a
// restart: their Next returns an error, and the registry.Cache in front re-watches
// and resyncs. Errors come back through FromStatus, with the registry sentinels
// restored (errors.Is(err, registry.ErrNotFound) holds for a 404).
func NewRegistryClient(name string, conn Conn) registry.Registry {
	return &registryClient{name: name, conn: conn}
}

// Name is the name the host gave the plugin.
func (c *registryClient) Name() string { return c.name }

// Register validates svc here, saving a round trip for a bad service, then
// registers it in the plugin.
func (c *registryClient) Register(ctx context.Context, svc *registry.Service, ttl time.Duration) error {
	if err := svc.Validate(); err != nil {
		return err
	}
	rc, err := c.client()
	if err != nil {
		return err
	}
	_, err = rc.Register(ctx, &pluginv1.RegisterRequest{Service: serviceToProto(svc), TtlMs: ttlToMillis(ttl)})
	return c.fail(fmt.Sprintf("register %q", svc.Name), err)
}

// Deregister removes svc's nodes in the plugin.
func (c *registryClient) Deregister(ctx context.Context, svc *registry.Service) error {
	if svc == nil || svc.Name == "" {
		return fmt.Errorf("%w: deregister needs a service name", registry.ErrInvalidService)
	}
	rc, err := c.client()
	if err != nil {
		return err
	}
	_, err = rc.Deregister(ctx, &pluginv1.DeregisterRequest{Service: serviceToProto(svc)})
	return c.fail(fmt.Sprintf("deregister %q", svc.Name), err)
}

// GetService returns every version of name, or an error wrapping ErrNotFound.
func (c *registryClient) GetService(ctx context.Context, name string) ([]*registry.Service, error) {
	rc, err := c.client()
	if err != nil {
		return nil, err
	}
	resp, err := rc.GetService(ctx, &pluginv1.GetServiceRequest{Name: name})
	if err != nil {
		return nil, c.fail(fmt.Sprintf("get %q", name), err)
	}
	svcs := servicesFromProto(resp.GetServices())
	if len(svcs) == 0 { // a plugin answering "nothing" means not found, as the contract says
		return nil, fmt.Errorf("%w: %q (registry %s)", registry.ErrNotFound, name, c.name)
	}
	return svcs, nil
}

// ListServices returns every service the plugin knows.
func (c *registryClient) ListServices(ctx context.Context) ([]*registry.Service, error) {
	rc, err := c.client()
	if err != nil {
		return nil, err
	}
	resp, err := rc.ListServices(ctx, &pluginv1.ListServicesRequest{})
	if err != nil {
		return nil, c.fail("list", err)
	}
	return servicesFromProto(resp.GetServices()), nil
}

// Watch opens a watch stream. It returns once the plugin's watcher is open (the
// plugin sends its response headers then), so every later change is streamed.
// The watcher ends when ctx ends, on Stop, or when the stream breaks (the plugin
// crashed or restarted): Next then returns an error and the caller re-watches.
func (c *registryClient) Watch(ctx context.Context) (registry.Watcher, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("registry %s: watch: %w", c.name, err)
	}
	rc, err := c.client()
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	stream, err := rc.Watch(sctx, &pluginv1.WatchRequest{})
	if err != nil {
		cancel()
		return nil, c.fail("watch", err)
	}
	if md, err := stream.Header(); err != nil || md == nil {
		// The stream ended before the watcher opened; Recv says why.
		_, err := stream.Recv()
		cancel()
		if err == nil || err == io.EOF {
			err = errors.Unavailable(c.name, "plugin %s ended the watch stream before it opened", c.name)
		}
		return nil, c.fail("watch", err)
	}
	return &registryWatcher{c: c, stream: stream, ctx: sctx, cancel: cancel}, nil
}

// client returns a stub over the current connection, or conn's 503 error.
func (c *registryClient) client() (pluginv1.RegistryClient, error) {
	cc, err := c.conn.Current()
	if err != nil {
		return nil, err
	}
	return pluginv1.NewRegistryClient(cc), nil
}

// fail turns a gRPC error into what the caller sees: the plugin's envelope with
// the registry sentinel restored, or a wrapped transport or context error.
func (c *registryClient) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	err = hostError(c.name, err, registrySentinel)
	var env *errors.Error
	if stderrors.As(err, &env) {
		return err
	}
	return fmt.Errorf("registry %s: %s: %w", c.name, op, err)
}

// registrySentinel is the sentinel a registry envelope code stands for on the
// host. A 503 is left alone: it says the plugin or its backend is unavailable,
// whichever side noticed.
func registrySentinel(code int32) error {
	switch code {
	case http.StatusNotFound:
		return registry.ErrNotFound
	case http.StatusBadRequest:
		return registry.ErrInvalidService
	case http.StatusTooManyRequests:
		return registry.ErrWatcherOverflow
	}
	return nil
}

// registryWatcher is a registry.Watcher over a Watch stream.
type registryWatcher struct {
	c       *registryClient
	stream  pluginv1.Registry_WatchClient
	ctx     context.Context // the stream's: ends on Stop or with the caller's context
	cancel  context.CancelFunc
	mu      sync.Mutex // serialises Next: a stream has one reader
	stopped atomic.Bool
}

// Next returns the next event, or an error once the watcher was stopped
// (ErrWatcherStopped), its context ended, or the stream broke.
func (w *registryWatcher) Next() (*registry.Event, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		if w.stopped.Load() {
			return nil, registry.ErrWatcherStopped
		}
		p, err := w.stream.Recv()
		if err != nil {
			ours := w.ctx.Err() != nil // cancelled here, not broken by the plugin's side
			w.cancel()                 // the stream is over either way; release its context
			if w.stopped.Load() {
				return nil, registry.ErrWatcherStopped
			}
			if !ours {
				err = pluginStreamBroken(w.c.name, "watch", err)
			}
			return nil, w.c.fail("watch", err)
		}
		if ev, ok := eventFromProto(p); ok {
			return ev, nil
		}
		// An event type this host does not know: skip it rather than misapply it.
	}
}

// Stop cancels the stream; Next returns ErrWatcherStopped.
func (w *registryWatcher) Stop() {
	w.stopped.Store(true)
	w.cancel()
}
