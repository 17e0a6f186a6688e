// Package plugins loads, verifies and supervises out-of-process plugins for the
// host: it checks each binary against micro.lock.hcl on a host-owned copy, starts
// it over go-plugin with mutual TLS, negotiates the protocol, validates and hands
// over config, restarts it when it dies, and hands back the same Go interfaces the
// built-ins have.
package plugins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/microhost/micro/host/workdir"
	"github.com/microhost/micro/sdk/plugin"
	pluginv1 "github.com/microhost/micro/sdk/plugin/proto/micro/plugin/v1"
	"github.com/microhost/micro/sdk/telemetry"
)

// Spec says which plugin to run and how.
type Spec struct {
	// ID is "<kind>-<name>", e.g. "registry-consul".
	ID string
	// Kind is what the config expects the plugin to be; Describe must agree.
	Kind string
	// Version is the locked version (for logs and messages).
	Version string
	// Path is the binary to run (a host-owned copy is what actually runs).
	Path string
	// SHA256 is the hex digest micro.lock.hcl records; the copy must match it
	// before every start.
	SHA256 string
	// Config is the plugin's config block as JSON; nil means {}.
	Config json.RawMessage
	// Procs is the GOMAXPROCS the plugin process runs with; 0 means
	// DefaultProcs.
	Procs int
}

// DefaultProcs is the GOMAXPROCS a plugin runs with unless its Spec says
// otherwise: half of the host's, at least one. A plugin works for the host on
// the same machine; two Go schedulers each sized for every core keep waking
// threads the other's work needs, which costs more than the plugin's extra
// cores give (on 2 cores, RPC over the plugin transport ran about 10% faster
// with 1).
func DefaultProcs() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// procs is the GOMAXPROCS the plugin runs with.
func (s Spec) procs() int {
	if s.Procs > 0 {
		return s.Procs
	}
	return DefaultProcs()
}

// Options tune a Manager.
type Options struct {
	Logger         hclog.Logger
	StartTimeout   time.Duration // launch until handshake; default 10s
	HealthInterval time.Duration // between health pings; default 2s
	MaxBackoff     time.Duration // cap of the restart backoff; default 10s
	DrainTimeout   time.Duration // Shutdown drain per plugin; default 5s
	// Telemetry, when set, sends the host's trace context to the plugins on
	// every call and counts and times the calls in its registerer.
	Telemetry *telemetry.Telemetry
}

// Manager runs the plugins of one host.
type Manager struct {
	opts  Options
	tls   *plugin.HostTLS
	work  *workdir.Dir // where the verified copies of the binaries run from, and the sockets live
	calls *callMetrics // nil without metrics

	mu        sync.Mutex
	instances []*Instance
	closed    bool
}

// NewManager prepares the TLS material and a host-owned directory for binaries.
func NewManager(opts Options) (*Manager, error) {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 10 * time.Second
	}
	if opts.HealthInterval <= 0 {
		opts.HealthInterval = 2 * time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 10 * time.Second
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 5 * time.Second
	}
	ht, err := plugin.NewHostTLS()
	if err != nil {
		return nil, err
	}
	m := &Manager{opts: opts, tls: ht}
	if reg := opts.Telemetry.Registerer(); reg != nil {
		if m.calls, err = newCallMetrics(reg); err != nil {
			return nil, fmt.Errorf("plugins: %w", err)
		}
	}
	if m.work, err = workdir.New(workDirPrefix); err != nil {
		return nil, fmt.Errorf("plugins: %w", err)
	}
	return m, nil
}

// workDirPrefix names the directories hosts run their plugin copies from.
const workDirPrefix = "microhost-plugins-"

// maxSocketPath is the longest path a Unix socket can be bound at on Linux
// (sun_path holds 108 bytes with the terminating NUL).
const maxSocketPath = 107

// socketDir is where plugins create their gRPC sockets: the work directory,
// so that a plugin killed before it could remove its socket leaves it where
// the host removes it, not in the shared temporary directory. It is "" (the
// plugin's default, the system's temporary directory) when the directory's
// path leaves too little room for go-plugin's socket name ("plugin" and up to
// ten digits).
func (m *Manager) socketDir() string {
	if len(m.work.Path())+len("/plugin")+10 > maxSocketPath {
		return ""
	}
	return m.work.Path()
}

// Start verifies, launches, describes and configures one plugin and supervises
// it until Close. Refusals name the plugin and the fix.
func (m *Manager) Start(ctx context.Context, spec Spec) (*Instance, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, fmt.Errorf("plugin %s: the host is shutting down", spec.ID)
	}
	m.mu.Unlock()

	if spec.SHA256 == "" {
		return nil, fmt.Errorf("plugin %s has no sha256 in %s: install it with `micro plugin install <source>` so its checksum is recorded", spec.ID, LockFileName)
	}
	if _, err := os.Stat(spec.Path); err != nil {
		return nil, fmt.Errorf("plugin %s %s: binary %s is missing (%w): install it with `micro plugin install <source>`", spec.ID, spec.Version, spec.Path, errors.Unwrap(err))
	}
	owned := filepath.Join(m.work.Path(), spec.ID+"-"+spec.Version)
	if err := os.MkdirAll(owned, 0o700); err != nil {
		return nil, fmt.Errorf("plugin %s: %w", spec.ID, err)
	}
	copyPath := filepath.Join(owned, BinaryName(spec.ID))
	if _, err := CopyFile(spec.Path, copyPath, 0o500); err != nil {
		return nil, fmt.Errorf("plugin %s: copying %s into the host's directory: %w", spec.ID, spec.Path, err)
	}
	inst := newInstance(m, spec, copyPath)
	if err := inst.start(ctx); err != nil {
		inst.stopProcess()
		return nil, err
	}
	m.mu.Lock()
	if m.closed {
		// Close ran while the plugin started and did not see it.
		m.mu.Unlock()
		inst.stopProcess()
		return nil, fmt.Errorf("plugin %s: the host is shutting down", spec.ID)
	}
	m.instances = append(m.instances, inst)
	m.mu.Unlock()
	go inst.supervise()
	return inst, nil
}

// Describe launches the binary at path once, verifies it against sha256,
// completes the handshake and returns what its Describe answers, without
// configuring it; then it stops it. Installers use it to learn a plugin's kind,
// name and version.
func (m *Manager) Describe(ctx context.Context, path, sha256 string) (*pluginv1.DescribeResponse, error) {
	id := filepath.Base(path)
	spec := Spec{ID: id, Version: "(new)", Path: path, SHA256: sha256}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("plugin %s: %w", path, err)
	}
	inst := newInstance(m, spec, path)
	inst.describeOnly = true
	defer inst.stopProcess()
	if err := inst.start(ctx); err != nil {
		return nil, err
	}
	return inst.Info(), nil
}

// Close stops every plugin: each is asked to drain, then its process group is
// killed, so no plugin process outlives the host.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	insts := m.instances
	m.instances = nil
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, inst := range insts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			inst.Stop()
		}()
	}
	wg.Wait()
	return m.work.Close()
}
