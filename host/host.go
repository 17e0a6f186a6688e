// Package host assembles a running Microhost system from micro.hcl: it starts
// the configured plugins, builds the registry, broker, transport and codecs
// (built in or plugin, behind the same interfaces), runs the declared services,
// and stops everything in order on a signal.
package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/microhost/micro/gateway"
	"github.com/microhost/micro/host/config"
	"github.com/microhost/micro/host/plugins"
	"github.com/microhost/micro/sdk/auth/tlsconfig"
	"github.com/microhost/micro/sdk/broker"
	"github.com/microhost/micro/sdk/client"
	"github.com/microhost/micro/sdk/plugin"
	"github.com/microhost/micro/sdk/registry"
	"github.com/microhost/micro/sdk/service"
)

// Host is one provisioned system: plugins started, components built, services
// ready to run.
type Host struct {
	opts     options
	cfg      *config.Config
	log      hclog.Logger
	manager  *plugins.Manager
	comp     *components
	services []*service.Service
	client   *client.Client
	tls      *plugin.HostTLS
	bridge   *bridge
	tel      *hostTelemetry
	children []*child
	remote   *Remote   // set in a child service: the parent host's bridge
	only     string    // in a child service: the one service block it runs
	cleanup  []func()  // run by Close
	sec      *security // the security block made real; nil without one

	gw             sync.Mutex // guards the gateway fields: a reload hands the gateway over
	gateway        *gateway.Gateway
	gatewayServing bool                // listening (started by this host or adopted)
	gatewayAdopted bool                // taken over from the host this one replaced
	gatewayCerts   *tlsconfig.Reloader // the gateway's HTTPS certificate; nil for plain HTTP

	ready     chan struct{} // closed once Run has everything serving
	closeOnce sync.Once
}

// isReady reports whether Run got everything serving.
func (h *Host) isReady() bool {
	select {
	case <-h.ready:
		return true
	default:
		return false
	}
}

// New loads and validates the config, starts its plugins and builds every
// component and service, without serving yet. Nothing is left running when it
// fails.
func New(ctx context.Context, opts ...Option) (*Host, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	var remote *Remote
	only := ""
	if addr := os.Getenv(EnvBridge); addr != "" && o.config == nil {
		// Started by a host as a child service: share its registry and broker.
		var err error
		if remote, err = DialBridge(addr, os.Getenv(EnvBridgeTLS)); err != nil {
			return nil, err
		}
		only = os.Getenv(EnvService)
		if o.configFile == "" {
			o.configFile = os.Getenv(EnvConfig)
		}
	}
	cfg := o.config
	if cfg == nil {
		var err error
		if o.configFile != "" {
			cfg, err = config.Load(o.configFile, o.configOpts...)
		} else {
			cfg = config.Default()
		}
		if err != nil {
			if remote != nil {
				remote.Close()
			}
			return nil, err
		}
	}
	h := &Host{opts: o, cfg: cfg, log: o.logger, remote: remote, only: only, ready: make(chan struct{})}
	if h.log == nil {
		h.log = newLogger(cfg.Telemetry.Log)
	}
	for _, w := range cfg.Warnings {
		h.log.Warn(diagString(w))
	}
	sec, err := newSecurity(ctx, cfg.Security, h.log)
	if err != nil {
		if remote != nil {
			remote.Close()
		}
		return nil, err
	}
	h.sec = sec
	tel, err := newHostTelemetry(ctx, cfg.Telemetry, o.metricsRegistry, o.spanExporter, h.log.Named("telemetry"))
	if err != nil {
		sec.close()
		if remote != nil {
			remote.Close()
		}
		return nil, err
	}
	h.tel = tel
	m, err := plugins.NewManager(plugins.Options{Logger: h.logger("plugin"), Telemetry: tel.tel})
	if err != nil {
		tel.close()
		sec.close()
		if remote != nil {
			remote.Close()
		}
		return nil, err
	}
	h.manager = m
	if h.comp, err = h.provision(ctx); err != nil {
		h.Close()
		return nil, err
	}
	tel.watch(m, h.comp.transport)
	if h.tls, err = plugin.NewHostTLS(); err != nil {
		h.Close()
		return nil, err
	}
	if !h.isChild() {
		if h.bridge, err = startBridge(h.tls, h.comp.registry, h.comp.broker); err != nil {
			h.Close()
			return nil, err
		}
	}
	if err := h.buildServices(); err != nil {
		h.Close()
		return nil, err
	}
	if err := h.buildChildren(ctx); err != nil {
		h.Close()
		return nil, err
	}
	if err := h.buildGateway(); err != nil {
		h.Close()
		return nil, err
	}
	h.client = client.New(append([]client.Option{client.Registry(h.comp.registry), client.Transport(h.comp.transport),
		client.Codecs(h.comp.codecs), client.Selector(h.comp.selector)}, h.sec.clientOptions()...)...)
	return h, nil
}

// buildServices creates the declared services and attaches the handlers given
// with WithHandler / WithServiceHandler.
func (h *Host) buildServices() error {
	var embedded []*config.Service
	for _, sc := range h.cfg.Services {
		switch {
		case h.isChild() && sc.Name == h.only:
			embedded = append(embedded, sc) // this process is that service
		case h.isChild():
		case sc.Embedded():
			embedded = append(embedded, sc)
		}
	}
	if h.isChild() && len(embedded) == 0 {
		return fmt.Errorf("this child service was started for service %q, which %s does not declare", h.only, h.cfg.Filename)
	}
	byName := map[string]*service.Service{}
	for _, sc := range embedded {
		opts := []service.Option{
			service.Version(sc.Version),
			service.Address(sc.Address),
			service.Registry(h.comp.registry),
			service.Broker(h.comp.broker),
			service.Transport(h.comp.transport),
			service.Codecs(h.comp.codecs),
			service.TTL(sc.TTL),
			service.DrainTimeout(sc.DrainTimeout),
			service.HandleSignals(false),
			service.Logger(h.log.Named(sc.Name).Info),
			service.Telemetry(h.tel.tel.Logged(h.logger(sc.Name))),
			service.ClientOptions(client.Selector(h.comp.selector)),
		}
		if sc.Advertise != "" {
			opts = append(opts, service.Advertise(sc.Advertise))
		}
		secOpts, err := h.sec.serviceOptions(sc.Name)
		if err != nil {
			return err
		}
		opts = append(opts, secOpts...)
		for k, v := range sc.Metadata {
			opts = append(opts, service.Metadata(k, v))
		}
		svc := service.New(sc.Name, opts...)
		byName[sc.Name] = svc
		h.services = append(h.services, svc)
	}
	handled := map[string]bool{}
	for _, hd := range h.opts.handlers {
		name := hd.service
		if name == "" {
			if len(embedded) != 1 {
				return fmt.Errorf("host.WithHandler needs exactly one embedded service in the config, found %d: use host.WithServiceHandler(name, handler)", len(embedded))
			}
			name = embedded[0].Name
		}
		svc, ok := byName[name]
		if !ok && hd.optional {
			continue
		}
		if !ok {
			return fmt.Errorf("a handler was given for service %q, which the config does not declare as an embedded service", name)
		}
		if err := svc.Handle(hd.h, hd.opts...); err != nil {
			return fmt.Errorf("service %s: %w", name, err)
		}
		handled[name] = true
	}
	for _, sc := range embedded {
		if !handled[sc.Name] {
			return fmt.Errorf("%s: service %s is embedded (no package or binary) but has no handler: register one with host.WithServiceHandler(%q, handler), or give it a package",
				rangeString(sc.Range), sc.Name, sc.Name)
		}
	}
	return nil
}

// Config returns the config the host runs.
func (h *Host) Config() *config.Config { return h.cfg }

// Logger returns the host's logger.
func (h *Host) Logger() hclog.Logger { return h.log }

// Registry returns the configured registry.
func (h *Host) Registry() registry.Registry { return h.comp.registry }

// Broker returns the configured broker.
func (h *Host) Broker() broker.Broker { return h.comp.broker }

// Client returns a client over the configured registry, transport and codecs.
func (h *Host) Client() *client.Client { return h.client }

// Services returns the running services (addresses are known once ready).
func (h *Host) Services() []*service.Service { return h.services }

// Run serves every service until ctx ends or SIGINT/SIGTERM arrives, then stops
// in order: services deregister and drain, then plugins stop.
func (h *Host) Run(ctx context.Context) error {
	defer h.Close()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	svcCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()

	errs := make(chan error, len(h.services))
	var wg sync.WaitGroup
	for _, svc := range h.services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := svc.Run(svcCtx); err != nil {
				errs <- err // service.Run names the service
			}
		}()
	}
	if h.isChild() {
		go exitWhenOrphaned(svcCtx, stop, h.log)
	}
	var watching sync.WaitGroup
	var runErr error
	for _, svc := range h.services {
		select {
		case <-svc.Ready():
		case runErr = <-errs:
		case <-ctx.Done():
		}
		if runErr != nil || ctx.Err() != nil {
			break
		}
	}
	defer h.stopChildren()
	if runErr == nil && ctx.Err() == nil {
		runErr = h.startChildren(ctx)
	}
	if runErr == nil && ctx.Err() == nil {
		runErr = h.startGateway(ctx)
	}
	if runErr == nil && ctx.Err() == nil {
		runErr = h.tel.start(ctx)
	}
	if runErr == nil && ctx.Err() == nil {
		for _, svc := range h.services {
			h.log.Info("service ready", "service", svc.Name(), "address", svc.Addr())
		}
		checkCtx, cancelCheck := context.WithTimeout(ctx, endpointCheckTimeout)
		h.warnUnknownEndpoints(checkCtx)
		cancelCheck()
		if h.bridge != nil {
			if path, err := h.bridge.writeState(h.dir()); err != nil {
				h.log.Warn("cannot record the host for the CLI", "error", err.Error())
			} else {
				defer os.Remove(path)
			}
		}
		if h.opts.watch {
			watching.Add(1)
			go func() {
				defer watching.Done()
				h.watchChildren(svcCtx)
			}()
		}
		close(h.ready)
		if h.opts.onReady != nil {
			h.opts.onReady(h)
		}
		select {
		case <-ctx.Done():
		case runErr = <-errs:
		}
	}
	h.log.Info("stopping: the gateway and services drain, then plugins stop")
	h.stopGateway()
	cancel()
	watching.Wait()
	h.stopChildren()
	wg.Wait()
	close(errs)
	for err := range errs {
		runErr = errors.Join(runErr, err)
	}
	return runErr
}

// Close stops what New started (plugins, built-ins); Run calls it.
func (h *Host) Close() error {
	h.closeOnce.Do(func() {
		h.stopGateway()
		if h.client != nil {
			h.client.Close()
		}
		if h.bridge != nil {
			h.bridge.stop()
		}
		if h.remote != nil {
			h.remote.Close()
		}
		for _, f := range h.cleanup {
			f()
		}
		h.tel.close()
		if h.comp != nil {
			h.comp.close()
		}
		h.sec.close()
		h.manager.Close()
	})
	return nil
}

// startChildren launches the child services and waits until each registered.
func (h *Host) startChildren(ctx context.Context) error {
	for _, c := range h.children {
		if err := c.start(h); err != nil {
			return err
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for _, c := range h.children {
		if err := c.waitRegistered(wctx, h.comp.registry); err != nil {
			return err
		}
		h.log.Info("service ready", "service", c.cfg.Name, "pid", c.pid())
	}
	return nil
}

// stopChildren stops every child service in parallel.
func (h *Host) stopChildren() {
	var wg sync.WaitGroup
	for _, c := range h.children {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.stop()
		}()
	}
	wg.Wait()
}

// dir is the config file's directory (the working directory for the embedded
// default): where the lock file and the state file live.
func (h *Host) dir() string {
	if h.opts.configFile != "" {
		return filepath.Dir(h.opts.configFile)
	}
	if _, err := os.Stat(h.cfg.Filename); err == nil {
		return filepath.Dir(h.cfg.Filename)
	}
	return "."
}

// Run builds a host from opts and runs it; see Host.Run.
func Run(ctx context.Context, opts ...Option) error {
	h, err := New(ctx, opts...)
	if err != nil {
		return err
	}
	return h.Run(ctx)
}

// rangeString renders a source range as file:line:col.
func rangeString(r hcl.Range) string {
	if r.Filename == "" {
		return "micro.hcl"
	}
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}

// diagString renders a diagnostic as file:line:col: summary; detail.
func diagString(d *hcl.Diagnostic) string {
	s := d.Summary
	if d.Detail != "" {
		s += "; " + d.Detail
	}
	if d.Subject != nil {
		return rangeString(*d.Subject) + ": " + s
	}
	return s
}
