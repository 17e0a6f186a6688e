package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"

	"github.com/microhost/micro/sdk/registry"
)

// How a registry.Service is laid out in a Consul service instance's Meta.
// Consul allows 64 pairs, keys of 128 bytes of [A-Za-z0-9_-] and values of 512 bytes.
const (
	metaVersion      = "version"    // the service version
	metaServicePfx   = "svc-"       // svc-<key>: service metadata
	metaNodePfx      = "node-"      // node-<key>: node metadata
	metaEndpointsPfx = "endpoints-" // endpoints-0, -1, ...: the endpoints as JSON, cut in pieces
	tagVersionPfx    = "version="   // tag version=<v>, for Consul UIs and DNS filtering
	tagMicro         = "micro"      // tag marking instances registered through Microhost

	maxMetaPairs    = 64
	maxMetaKeyLen   = 128
	maxMetaValueLen = 512
)

var metaKeyRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// errNotConfigured is returned before Configure succeeded.
var errNotConfigured = errors.New("consul registry: not configured (no address)")

// consulRegistry is a registry.Registry on a Consul agent.
type consulRegistry struct {
	log hclog.Logger

	mu     sync.Mutex
	client *api.Client
	opts   options
	leases map[string]*lease // by service ID (= node ID): what this plugin registered

	watchErrors atomic.Int64 // failed watch queries, so a hot error loop shows
}

// lease is one instance this plugin registered. While it lives (until expires,
// pushed back by every Register), a keepalive goroutine passes its TTL check
// every ttl/3 and registers it again if Consul lost it (an agent restart).
type lease struct {
	reg     *api.AgentServiceRegistration
	ttl     time.Duration
	expires time.Time
	stop    chan struct{} // closed to end the keepalive goroutine

	// mu is held by the keepalive while it talks to Consul, and by retire, so
	// once retire returns no late re-registration can resurrect the instance.
	mu      sync.Mutex
	retired bool
}

// retire ends l's keepalive and waits for a refresh in flight to finish.
func (l *lease) retire() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.retired {
		l.retired = true
		close(l.stop)
	}
}

// newRegistry returns an unconfigured registry; Configure connects it.
func newRegistry(log hclog.Logger) *consulRegistry {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &consulRegistry{log: log, leases: map[string]*lease{}}
}

// Name implements registry.Registry.
func (r *consulRegistry) Name() string { return "consul" }

// Configure implements plugin.Configurer: it builds the Consul client. It does
// not contact Consul, so the plugin may start before Consul does.
func (r *consulRegistry) Configure(ctx context.Context, raw json.RawMessage) error {
	o, err := parseConfig(raw)
	if err != nil {
		return err
	}
	c := api.DefaultConfig()
	c.Address, c.Token = o.address, o.token
	c.Datacenter, c.Namespace, c.Partition = o.datacenter, o.namespace, o.partition
	client, err := api.NewClient(c)
	if err != nil {
		return fmt.Errorf("consul client for %q: %w", o.address, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.client, r.opts = client, o
	return nil
}

// Health implements plugin.HealthChecker: Consul must answer and have a leader.
func (r *consulRegistry) Health(ctx context.Context) error {
	client, _, err := r.current()
	if err != nil {
		return err
	}
	leader, err := client.Status().LeaderWithQueryOptions((&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("consul: %w", err)
	}
	if leader == "" {
		return errors.New("consul: no leader")
	}
	return nil
}

// current returns the client and options of the last Configure.
func (r *consulRegistry) current() (*api.Client, options, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.client == nil {
		return nil, options{}, errNotConfigured
	}
	return r.client, r.opts, nil
}

// Register implements registry.Registry: one Consul service instance per node,
// its ID the node ID, with a TTL check when ttl > 0 (and ttl_check is on).
func (r *consulRegistry) Register(ctx context.Context, svc *registry.Service, ttl time.Duration) error {
	if err := svc.Validate(); err != nil {
		return err
	}
	client, o, err := r.current()
	if err != nil {
		return err
	}
	regs := make([]*api.AgentServiceRegistration, len(svc.Nodes))
	for i, n := range svc.Nodes {
		if regs[i], err = r.toRegistration(svc, n, ttl, o); err != nil {
			return err
		}
	}
	for _, reg := range regs {
		if old := r.take(reg.ID); old != nil {
			old.retire() // its keepalive must not re-register the old definition
		}
		// Replace the checks of an earlier registration of the same node, so a
		// registration without TTL drops the old TTL check.
		opts := api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(ctx)
		if err := client.Agent().ServiceRegisterOpts(reg, opts); err != nil {
			return fmt.Errorf("consul: register %s node %s: %w", svc.Name, reg.ID, err)
		}
		r.track(client, reg, ttl, o.ttlCheck)
	}
	return nil
}

// track records reg as registered by this plugin and starts its keepalive.
func (r *consulRegistry) track(client *api.Client, reg *api.AgentServiceRegistration, ttl time.Duration, ttlCheck bool) {
	l := &lease{reg: reg, ttl: ttl, expires: time.Now().Add(ttl), stop: make(chan struct{})}
	r.mu.Lock()
	old := r.leases[reg.ID] // a concurrent Register of the same node won the race
	r.leases[reg.ID] = l
	r.mu.Unlock()
	if old != nil {
		old.retire()
	}
	if ttl > 0 && ttlCheck {
		go r.keepAlive(client, l)
	}
}

// take removes and returns the lease of service ID id, if any.
func (r *consulRegistry) take(id string) *lease {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.leases[id]
	delete(r.leases, id)
	return l
}

// takeAll removes and returns every lease.
func (r *consulRegistry) takeAll() map[string]*lease {
	r.mu.Lock()
	defer r.mu.Unlock()
	all := r.leases
	r.leases = map[string]*lease{}
	return all
}

// keepAlive passes l's TTL check every ttl/3 until the lease expires (nobody
// registered the node again) or stop. At expiry it marks the check critical
// itself, so the instance leaves the passing set when its TTL says, not up to a
// TTL later when Consul's own timer fires; if the plugin is gone, that timer
// still expires it. When an update fails because Consul no longer knows the
// check (the agent restarted, and dev agents keep nothing), it registers the
// instance again.
func (r *consulRegistry) keepAlive(client *api.Client, l *lease) {
	every := max(l.ttl/3, 100*time.Millisecond)
	tick := time.NewTicker(every)
	defer tick.Stop()
	expiry := time.NewTimer(time.Until(l.expires))
	defer expiry.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-expiry.C:
			r.expire(client, l, every)
			return
		case <-tick.C:
		}
		if !time.Now().Before(l.expires) {
			r.expire(client, l, every)
			return
		}
		if !r.refresh(client, l, every) {
			return
		}
	}
}

// expire marks l's TTL check critical: its registration's TTL elapsed without
// a renewal. Nothing is done if l was retired meanwhile (renewed or removed).
func (r *consulRegistry) expire(client *api.Client, l *lease, timeout time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.retired {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := client.Agent().UpdateTTLOpts(checkID(l.reg.ID), "the registration's TTL elapsed without a renewal", api.HealthCritical, (&api.QueryOptions{}).WithContext(ctx)); err != nil {
		r.log.Debug("cannot mark an expired instance critical; Consul's TTL will", "service", l.reg.Name, "node", l.reg.ID, "error", err)
	}
}

// refresh passes l's TTL check once, registering the instance again if that
// fails; false if l was retired meanwhile.
func (r *consulRegistry) refresh(client *api.Client, l *lease, timeout time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.retired {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := client.Agent().UpdateTTLOpts(checkID(l.reg.ID), "", api.HealthPassing, (&api.QueryOptions{}).WithContext(ctx))
	if err == nil {
		return true
	}
	opts := api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(ctx)
	if rerr := client.Agent().ServiceRegisterOpts(l.reg, opts); rerr != nil {
		r.log.Warn("cannot refresh TTL check nor re-register", "service", l.reg.Name, "node", l.reg.ID, "ttl_error", err, "error", rerr)
	} else {
		r.log.Info("re-registered an instance Consul had lost", "service", l.reg.Name, "node", l.reg.ID, "ttl_error", err)
	}
	return true
}

// Deregister implements registry.Registry: it removes svc's nodes from Consul
// (a node Consul does not know counts as removed).
func (r *consulRegistry) Deregister(ctx context.Context, svc *registry.Service) error {
	if svc == nil || svc.Name == "" {
		return fmt.Errorf("%w: deregister needs a service name", registry.ErrInvalidService)
	}
	client, _, err := r.current()
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range svc.Nodes {
		if n == nil || n.ID == "" {
			errs = append(errs, fmt.Errorf("%w: service %q: node without an ID", registry.ErrInvalidService, svc.Name))
			continue
		}
		if err := checkPathSafe(svc.Name, "node ID", n.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		if l := r.take(n.ID); l != nil {
			l.retire() // first, so its keepalive cannot re-register the node
		}
		if err := deregister(ctx, client, n.ID); err != nil {
			errs = append(errs, fmt.Errorf("consul: deregister %s node %s: %w", svc.Name, n.ID, err))
		}
	}
	return errors.Join(errs...)
}

// deregister removes one instance, treating "unknown service" as done.
func deregister(ctx context.Context, client *api.Client, id string) error {
	err := client.Agent().ServiceDeregisterOpts(id, (&api.QueryOptions{}).WithContext(ctx))
	var se api.StatusError
	if errors.As(err, &se) && se.Code == 404 {
		return nil
	}
	return err
}

// Drain implements plugin.Drainer: it deregisters every instance this plugin
// registered, so callers stop finding them before the plugin exits.
func (r *consulRegistry) Drain(ctx context.Context) error {
	leases := r.takeAll()
	for _, l := range leases {
		l.retire()
	}
	client, _, err := r.current()
	if err != nil {
		return nil // never configured: nothing registered
	}
	var errs []error
	for id, l := range leases {
		if err := deregister(ctx, client, id); err != nil {
			errs = append(errs, fmt.Errorf("consul: drain %s node %s: %w", l.reg.Name, id, err))
		}
	}
	return errors.Join(errs...)
}

// Close stops every keepalive; the instances expire by their TTL checks.
func (r *consulRegistry) Close() error {
	for _, l := range r.takeAll() {
		l.retire()
	}
	return nil
}

// GetService implements registry.Registry: passing instances only, grouped by
// version.
func (r *consulRegistry) GetService(ctx context.Context, name string) ([]*registry.Service, error) {
	client, _, err := r.current()
	if err != nil {
		return nil, err
	}
	if !pathSafe(name) {
		return nil, fmt.Errorf("%w: %q: Consul cannot look up a name with an empty, \".\" or \"..\" path segment", registry.ErrNotFound, name)
	}
	entries, _, err := client.Health().Service(name, "", true, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("consul: get service %s: %w", name, err)
	}
	svcs := r.group(named(entries, name))
	if len(svcs) == 0 {
		return nil, fmt.Errorf("%w: %s", registry.ErrNotFound, name)
	}
	return svcs, nil
}

// named keeps the entries of the service called exactly name: Consul looks
// names up ignoring case, so "USERS" would also answer with the instances of
// "users", and a caller keying policies by name would be misled.
func named(entries []*api.ServiceEntry, name string) []*api.ServiceEntry {
	out := entries[:0:0]
	for _, e := range entries {
		if e != nil && e.Service != nil && e.Service.Service == name {
			out = append(out, e)
		}
	}
	return out
}

// ListServices implements registry.Registry: one entry per name and version
// tag in Consul's catalog (no nodes).
func (r *consulRegistry) ListServices(ctx context.Context) ([]*registry.Service, error) {
	client, _, err := r.current()
	if err != nil {
		return nil, err
	}
	names, _, err := client.Catalog().Services((&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("consul: list services: %w", err)
	}
	var out []*registry.Service
	for name, tags := range names {
		versions := map[string]bool{}
		for _, t := range tags {
			if v, ok := strings.CutPrefix(t, tagVersionPfx); ok {
				versions[v] = true
			}
		}
		if len(versions) == 0 {
			versions[""] = true // not registered through Microhost: no version tag
		}
		for v := range versions {
			out = append(out, &registry.Service{Name: name, Version: v})
		}
	}
	slices.SortFunc(out, func(a, b *registry.Service) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Version, b.Version))
	})
	return out, nil
}

// Watch implements registry.Registry; see watch.go.
func (r *consulRegistry) Watch(ctx context.Context) (registry.Watcher, error) {
	client, _, err := r.current()
	if err != nil {
		return nil, err
	}
	return startWatch(ctx, client, r.log, r.group, &r.watchErrors)
}

// pathSafe reports whether s reaches Consul intact as the end of an agent API
// path (/v1/agent/service/deregister/<id>, /v1/health/service/<name>):
// Consul's HTTP router cleans paths, so an empty, "." or ".." segment would make
// the request address another service or endpoint.
func pathSafe(s string) bool {
	return s != "" && path.Clean("/"+s) == "/"+s
}

// checkPathSafe refuses a service name or node ID that is not pathSafe.
func checkPathSafe(service, what, s string) error {
	if pathSafe(s) {
		return nil
	}
	return fmt.Errorf("%w: service %q: %s %q has an empty, \".\" or \"..\" path segment, which Consul's API cannot address", registry.ErrInvalidService, service, what, s)
}

// checkID names the TTL check of the instance with service ID id.
func checkID(id string) string { return "micro-ttl:" + id }

// toRegistration turns one node of svc into a Consul service registration.
func (r *consulRegistry) toRegistration(svc *registry.Service, n *registry.Node, ttl time.Duration, o options) (*api.AgentServiceRegistration, error) {
	if err := checkPathSafe(svc.Name, "name", svc.Name); err != nil {
		return nil, err
	}
	if err := checkPathSafe(svc.Name, "node ID", n.ID); err != nil {
		return nil, err
	}
	host, portStr, err := net.SplitHostPort(n.Address)
	if err != nil {
		return nil, fmt.Errorf("%w: service %q node %q: address %q is not host:port: %v", registry.ErrInvalidService, svc.Name, n.ID, n.Address, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("%w: service %q node %q: port %q is not a number 0-65535", registry.ErrInvalidService, svc.Name, n.ID, portStr)
	}
	meta, err := r.encodeMeta(svc, n)
	if err != nil {
		return nil, err
	}
	reg := &api.AgentServiceRegistration{
		ID:      n.ID,
		Name:    svc.Name,
		Address: host,
		Port:    int(port),
		Tags:    []string{tagVersionPfx + svc.Version, tagMicro},
		Meta:    meta,
	}
	if ttl > 0 && o.ttlCheck {
		reg.Checks = append(reg.Checks, &api.AgentServiceCheck{
			CheckID: checkID(n.ID),
			Name:    "Microhost TTL",
			TTL:     ttl.String(),
			// Registering is a sign of life: start passing, not critical, so a
			// re-registration never hides the instance for a moment.
			Status:                         api.HealthPassing,
			DeregisterCriticalServiceAfter: o.deregisterAfter,
		})
	}
	if o.httpCheckPath != "" {
		reg.Checks = append(reg.Checks, &api.AgentServiceCheck{
			Name:                           "Microhost HTTP",
			HTTP:                           "http://" + n.Address + o.httpCheckPath,
			Interval:                       "10s",
			Timeout:                        "5s",
			DeregisterCriticalServiceAfter: o.deregisterAfter,
		})
	}
	return reg, nil
}

// encodeMeta lays svc's version and metadata and n's metadata out as Consul
// Meta. Endpoints go in as JSON cut into value-sized pieces; when they do not
// fit in the pairs left they are left out (with a warning), since discovery
// works without them.
func (r *consulRegistry) encodeMeta(svc *registry.Service, n *registry.Node) (map[string]string, error) {
	meta := map[string]string{metaVersion: svc.Version}
	put := func(prefix string, m map[string]string, what string) error {
		for k, v := range m {
			key := prefix + k
			switch {
			case !metaKeyRE.MatchString(k):
				return fmt.Errorf("%w: service %q: %s metadata key %q: Consul allows only letters, digits, _ and -", registry.ErrInvalidService, svc.Name, what, k)
			case len(key) > maxMetaKeyLen:
				return fmt.Errorf("%w: service %q: %s metadata key %q is longer than Consul's %d bytes (with prefix %q)", registry.ErrInvalidService, svc.Name, what, k, maxMetaKeyLen, prefix)
			case len(v) > maxMetaValueLen:
				return fmt.Errorf("%w: service %q: %s metadata %q: value longer than Consul's %d bytes", registry.ErrInvalidService, svc.Name, what, k, maxMetaValueLen)
			}
			meta[key] = v
		}
		return nil
	}
	if err := put(metaServicePfx, svc.Metadata, "service"); err != nil {
		return nil, err
	}
	if err := put(metaNodePfx, n.Metadata, "node"); err != nil {
		return nil, err
	}
	if len(meta) > maxMetaPairs {
		return nil, fmt.Errorf("%w: service %q node %q: %d metadata pairs with the version, Consul allows %d", registry.ErrInvalidService, svc.Name, n.ID, len(meta), maxMetaPairs)
	}
	if len(svc.Endpoints) > 0 {
		js, err := json.Marshal(svc.Endpoints)
		if err != nil {
			return nil, fmt.Errorf("consul: encode endpoints of %s: %w", svc.Name, err)
		}
		pieces := cut(string(js), maxMetaValueLen)
		if len(meta)+len(pieces) > maxMetaPairs {
			r.log.Warn("endpoints do not fit in Consul's service meta; registered without them",
				"service", svc.Name, "endpoints", len(svc.Endpoints), "json_bytes", len(js))
			return meta, nil
		}
		for i, p := range pieces {
			meta[metaEndpointsPfx+strconv.Itoa(i)] = p
		}
	}
	return meta, nil
}

// cut splits s into pieces of at most n bytes without splitting a UTF-8 character.
func cut(s string, n int) []string {
	var out []string
	for len(s) > n {
		i := n
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		out = append(out, s[:i])
		s = s[i:]
	}
	return append(out, s)
}

// group turns health entries into one registry.Service per version, nodes
// sorted by ID. A version's metadata and endpoints are those of its most
// recently modified instance.
func (r *consulRegistry) group(entries []*api.ServiceEntry) []*registry.Service {
	type version struct {
		svc    *registry.Service
		modify uint64
	}
	byVersion := map[string]*version{}
	for _, e := range entries {
		if e == nil || e.Service == nil {
			continue
		}
		s := e.Service
		v, header, node := r.decode(e)
		g := byVersion[v]
		if g == nil {
			g = &version{svc: header}
			byVersion[v] = g
		} else if s.ModifyIndex > g.modify {
			g.svc.Metadata, g.svc.Endpoints = header.Metadata, header.Endpoints
		}
		g.modify = max(g.modify, s.ModifyIndex)
		g.svc.Nodes = append(g.svc.Nodes, node)
	}
	out := make([]*registry.Service, 0, len(byVersion))
	for _, g := range byVersion {
		slices.SortFunc(g.svc.Nodes, func(a, b *registry.Node) int { return cmp.Compare(a.ID, b.ID) })
		out = append(out, g.svc)
	}
	slices.SortFunc(out, func(a, b *registry.Service) int { return cmp.Compare(a.Version, b.Version) })
	return out
}

// decode reads one instance back: its version, the version's header (name,
// metadata, endpoints) and the node.
func (r *consulRegistry) decode(e *api.ServiceEntry) (string, *registry.Service, *registry.Node) {
	s := e.Service
	v, ok := s.Meta[metaVersion]
	if !ok { // registered by something else: fall back to the tag, if any
		for _, t := range s.Tags {
			if tv, found := strings.CutPrefix(t, tagVersionPfx); found {
				v = tv
				break
			}
		}
	}
	header := &registry.Service{Name: s.Service, Version: v}
	node := &registry.Node{ID: s.ID}
	var pieces []string
	for k, val := range s.Meta {
		switch {
		case strings.HasPrefix(k, metaServicePfx):
			header.Metadata = setKey(header.Metadata, k[len(metaServicePfx):], val)
		case strings.HasPrefix(k, metaNodePfx):
			node.Metadata = setKey(node.Metadata, k[len(metaNodePfx):], val)
		}
	}
	for i := 0; ; i++ {
		p, ok := s.Meta[metaEndpointsPfx+strconv.Itoa(i)]
		if !ok {
			break
		}
		pieces = append(pieces, p)
	}
	if len(pieces) > 0 {
		if err := json.Unmarshal([]byte(strings.Join(pieces, "")), &header.Endpoints); err != nil {
			r.log.Warn("ignoring unreadable endpoints in Consul meta", "service", s.Service, "node", s.ID, "error", err)
			header.Endpoints = nil
		}
	}
	host := s.Address
	if host == "" && e.Node != nil {
		host = e.Node.Address // Consul's rule: no service address means the node's
	}
	node.Address = net.JoinHostPort(host, strconv.Itoa(s.Port))
	return v, header, node
}

// setKey sets m[k] = v, allocating m if needed.
func setKey(m map[string]string, k, v string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	m[k] = v
	return m
}

// sameService reports whether two snapshots of one version are equal.
func sameService(a, b *registry.Service) bool {
	return maps.Equal(a.Metadata, b.Metadata) &&
		slices.EqualFunc(a.Endpoints, b.Endpoints, func(x, y *registry.Endpoint) bool {
			return x.Name == y.Name && x.Request == y.Request && x.Response == y.Response && maps.Equal(x.Metadata, y.Metadata)
		}) &&
		slices.EqualFunc(a.Nodes, b.Nodes, func(x, y *registry.Node) bool {
			return x.ID == y.ID && x.Address == y.Address && maps.Equal(x.Metadata, y.Metadata)
		})
}

// sortByVersion orders versions of one service by their version string.
func sortByVersion(s []*registry.Service) {
	slices.SortFunc(s, func(a, b *registry.Service) int { return cmp.Compare(a.Version, b.Version) })
}
