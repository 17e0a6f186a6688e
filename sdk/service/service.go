// Package service is the entry point of a Microhost service: it listens, registers
// the real bound address with a TTL heartbeat, serves handlers, and on SIGTERM or
// SIGINT deregisters first, stops accepting, drains in-flight calls, then returns.
package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/microhost/micro/sdk/broker"
	"github.com/microhost/micro/sdk/client"
	"github.com/microhost/micro/sdk/registry"
	"github.com/microhost/micro/sdk/server"
	"github.com/microhost/micro/sdk/telemetry"
	"github.com/microhost/micro/sdk/transport"
)

// Service is one running instance of a named service.
type Service struct {
	name   string
	id     string
	opts   options
	server *server.Server
	client *client.Client
	cache  *registry.Cache
	// owned are what New created itself, closed when Run returns.
	owned []interface{ Close() error }

	mu    sync.Mutex
	addr  string
	ready chan struct{}
}

// New returns a service called name; register handlers with Handle, then Run.
func New(name string, opts ...Option) *Service {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	var owned []interface{ Close() error }
	if o.registry == nil {
		mem := registry.NewMemory()
		o.registry, owned = mem, append(owned, mem)
	}
	if o.transport == nil {
		tr := transport.NewHTTP()
		o.transport, owned = tr, append(owned, tr)
	}
	if o.broker == nil {
		o.broker = broker.NewMemory()
	}
	tel := o.tel.For(name)
	o.broker = broker.Instrument(o.broker, tel)
	s := &Service{name: name, id: name + "-" + randomID(), opts: o, owned: owned, ready: make(chan struct{})}
	srvOpts := append([]server.Option{server.Logger(o.logf), server.Telemetry(tel)}, o.serverOpts...)
	if o.codecs != nil {
		srvOpts = append(srvOpts, server.Codecs(o.codecs))
	}
	s.server = server.New(name, srvOpts...)
	s.cache = registry.NewCache(o.registry)
	cliOpts := []client.Option{client.Registry(s.cache), client.Transport(o.transport), client.From(name), client.Telemetry(tel)}
	if o.codecs != nil {
		cliOpts = append(cliOpts, client.Codecs(o.codecs))
	}
	s.client = client.New(append(cliOpts, o.clientOpts...)...)
	if reg := tel.Registerer(); reg != nil {
		for _, c := range telemetry.CacheCollectors(s.cache) {
			if err := telemetry.Replace(reg, c); err != nil {
				o.logf("registry cache metrics are off", "service", name, "error", err.Error())
			}
		}
	}
	return s
}

// Name returns the service name.
func (s *Service) Name() string { return s.name }

// ID returns this instance's node ID.
func (s *Service) ID() string { return s.id }

// Handle registers h's handler methods; see server.Server.Handle.
func (s *Service) Handle(h any, opts ...server.HandleOption) error {
	return s.server.Handle(h, opts...)
}

// Server returns the service's server.
func (s *Service) Server() *server.Server { return s.server }

// Client returns a client that looks services up in the same registry.
func (s *Service) Client() *client.Client { return s.client }

// Broker returns the service's broker.
func (s *Service) Broker() broker.Broker { return s.opts.broker }

// Registry returns the registry the service registers with.
func (s *Service) Registry() registry.Registry { return s.opts.registry }

// Ready is closed once the service listens and is registered.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Addr returns the registered address, once Ready.
func (s *Service) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Run serves until ctx ends, a SIGINT/SIGTERM arrives (unless turned off) or the
// listener fails, then shuts down in order: deregister, stop accepting, drain
// within the drain timeout. It returns nil after a clean shutdown.
func (s *Service) Run(ctx context.Context) error {
	if s.opts.signals {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
	}
	ln, err := s.opts.transport.Listen(ctx, s.opts.address)
	if err != nil {
		return fmt.Errorf("service %s: %w", s.name, err)
	}
	addr, err := advertiseAddr(s.opts.advertise, ln.Addr())
	if err != nil {
		ln.Close()
		return fmt.Errorf("service %s: %w", s.name, err)
	}
	s.mu.Lock()
	s.addr = addr
	s.mu.Unlock()

	serveErr := make(chan error, 1)
	go func() { serveErr <- ln.Serve(s.server) }()

	reg := s.registration(addr)
	if err := s.opts.registry.Register(ctx, reg, s.opts.ttl); err != nil {
		ln.Close()
		<-serveErr
		return fmt.Errorf("service %s: registering with the %s registry: %w", s.name, s.opts.registry.Name(), err)
	}
	s.opts.logf("service started", "service", s.name, "id", s.id, "address", addr, "transport", s.opts.transport.Name(), "registry", s.opts.registry.Name())
	close(s.ready)

	hbCtx, stopHeartbeat := context.WithCancel(context.Background())
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		s.heartbeat(hbCtx, reg)
	}()

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-serveErr:
		if runErr == nil {
			runErr = fmt.Errorf("service %s: listener stopped unexpectedly", s.name)
		} else {
			runErr = fmt.Errorf("service %s: %w", s.name, runErr)
		}
	}

	// Deregister first so callers stop choosing this node, then drain.
	stopHeartbeat()
	<-hbDone
	deregCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if err := s.opts.registry.Deregister(deregCtx, reg); err != nil {
		s.opts.logf("deregister failed", "service", s.name, "error", err.Error())
	}
	cancel()
	s.opts.logf("service draining", "service", s.name, "id", s.id, "timeout", s.opts.drainTimeout.String())

	drainCtx, cancel := context.WithTimeout(context.Background(), s.opts.drainTimeout)
	defer cancel()
	if err := ln.Shutdown(drainCtx); err != nil {
		ln.Close()
		if runErr == nil {
			runErr = fmt.Errorf("service %s: drain did not finish within %s: %w", s.name, s.opts.drainTimeout, err)
		}
	}
	select {
	case err := <-serveErr:
		if runErr == nil && err != nil {
			runErr = fmt.Errorf("service %s: %w", s.name, err)
		}
	default:
	}
	s.client.Close()
	s.cache.Close()
	for _, c := range s.owned {
		c.Close()
	}
	s.opts.logf("service stopped", "service", s.name, "id", s.id)
	return runErr
}

// registration is what this instance registers.
func (s *Service) registration(addr string) *registry.Service {
	md := map[string]string{"transport": s.opts.transport.Name()}
	for k, v := range s.opts.metadata {
		md[k] = v
	}
	return &registry.Service{
		Name:      s.name,
		Version:   s.opts.version,
		Endpoints: s.server.Endpoints(),
		Nodes:     []*registry.Node{{ID: s.id, Address: addr, Metadata: md}},
	}
}

// heartbeat re-registers every third of the TTL until ctx ends.
func (s *Service) heartbeat(ctx context.Context, reg *registry.Service) {
	if s.opts.ttl <= 0 {
		return
	}
	t := time.NewTicker(s.opts.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.opts.registry.Register(ctx, reg, s.opts.ttl); err != nil && ctx.Err() == nil {
				s.opts.logf("heartbeat failed", "service", s.name, "error", err.Error())
			}
		}
	}
}

// advertiseAddr returns the address callers should dial: the explicit one, or the
// bound one with an unspecified host replaced by this machine's first non-loopback
// address (loopback when there is none). Never 0.0.0.0 and never port 0.
func advertiseAddr(explicit, bound string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	host, port, err := net.SplitHostPort(bound)
	if err != nil {
		return "", fmt.Errorf("bound address %q: %w", bound, err)
	}
	if port == "0" || port == "" {
		return "", fmt.Errorf("bound address %q has no real port", bound)
	}
	ip := net.ParseIP(host)
	if host != "" && ip != nil && !ip.IsUnspecified() {
		return bound, nil
	}
	return net.JoinHostPort(hostIP(), port), nil
}

// hostIP returns the first non-loopback IPv4 address of an up interface, or
// 127.0.0.1.
func hostIP() string {
	ifaces, err := net.Interfaces()
	if err != nil {
		return "127.0.0.1"
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
				return ipn.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
