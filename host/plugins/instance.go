package plugins

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/microhost/micro/sdk/broker"
	"github.com/microhost/micro/sdk/codec"
	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/plugin"
	pluginv1 "github.com/microhost/micro/sdk/plugin/proto/micro/plugin/v1"
	"github.com/microhost/micro/sdk/registry"
	"github.com/microhost/micro/sdk/transport"
)

// Instance is one supervised plugin. It implements plugin.Conn, so the adapters
// it hands out keep working across restarts.
type Instance struct {
	m    *Manager
	spec Spec
	bin  string // the host-owned copy that runs
	log  hclog.Logger

	mu       sync.Mutex
	client   *goplugin.Client
	ended    *atomic.Bool // the current launch's: set when the host kills it
	socket   string       // the current launch's gRPC socket file, removed once it ends
	cc       *grpc.ClientConn
	info     *pluginv1.DescribeResponse
	pid      int
	up       bool
	stopped  bool
	restarts int
	changed  chan struct{}
	upSince  time.Time
	startup  time.Duration // launch until Describe answered, last start

	describeOnly bool // stop after Describe: no kind check, no Configure

	stopCh chan struct{}
	done   chan struct{}

	adaptersOnce sync.Once
	registry     registry.Registry
	broker       broker.Broker
	transport    transport.Transport
	codec        codec.Codec
}

var _ plugin.DataPathConn = (*Instance)(nil)

func newInstance(m *Manager, spec Spec, bin string) *Instance {
	return &Instance{
		m:       m,
		spec:    spec,
		bin:     bin,
		log:     m.opts.Logger.Named(spec.ID).With("plugin", spec.ID, "plugin_version", spec.Version),
		changed: make(chan struct{}),
		stopCh:  make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// ID returns "<kind>-<name>".
func (i *Instance) ID() string { return i.spec.ID }

// Info returns what the plugin's Describe answered.
func (i *Instance) Info() *pluginv1.DescribeResponse {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.info
}

// Pid returns the plugin's current process id (0 while it is down).
func (i *Instance) Pid() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	if !i.up {
		return 0
	}
	return i.pid
}

// StartupTime is how long the last start took from launching the process until
// Describe answered.
func (i *Instance) StartupTime() time.Duration {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.startup
}

// Restarts counts restarts after crashes.
func (i *Instance) Restarts() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.restarts
}

// Current implements plugin.Conn: the live connection, or a 503 while down.
func (i *Instance) Current() (grpc.ClientConnInterface, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.stopped {
		return nil, errors.Unavailable(i.spec.ID, "plugin %s is stopped: the host is shutting down", i.spec.ID)
	}
	if !i.up {
		return nil, errors.Unavailable(i.spec.ID, "plugin %s %s is restarting after a crash; try again shortly", i.spec.ID, i.spec.Version)
	}
	return i.cc, nil
}

// ClientTLS implements plugin.DataPathConn: the mutual-TLS configuration the
// host dials this plugin with, for its data path as for its gRPC channel.
func (i *Instance) ClientTLS() *tls.Config { return i.m.tls.ClientConfig() }

// Changed implements plugin.Conn: closed at the next restart or at Stop.
func (i *Instance) Changed() <-chan struct{} {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.changed
}

// Stopped implements plugin.Conn.
func (i *Instance) Stopped() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.stopped
}

// Registry returns the plugin as a registry.Registry (kind registry only).
func (i *Instance) Registry() registry.Registry { i.adapters(); return i.registry }

// Broker returns the plugin as a broker.Broker (kind broker only).
func (i *Instance) Broker() broker.Broker { i.adapters(); return i.broker }

// Transport returns the plugin as a transport.Transport (kind transport only).
func (i *Instance) Transport() transport.Transport { i.adapters(); return i.transport }

// Codec returns the plugin as a codec.Codec (kind codec only).
func (i *Instance) Codec() codec.Codec { i.adapters(); return i.codec }

func (i *Instance) adapters() {
	i.adaptersOnce.Do(func() {
		switch i.spec.Kind {
		case plugin.KindRegistry:
			i.registry = plugin.NewRegistryClient(i.spec.ID, i)
		case plugin.KindBroker:
			i.broker = plugin.NewBrokerClient(i.spec.ID, i)
		case plugin.KindTransport:
			i.transport = plugin.NewTransportClient(i.spec.ID, i)
		case plugin.KindCodec:
			i.codec = plugin.NewCodecClient(i.Info(), i)
		}
	})
}

var pluginVersionRE = regexp.MustCompile(`Plugin version: (\d+)`)

// start verifies the copy, launches it, and describes and configures it.
func (i *Instance) start(ctx context.Context) error {
	spec := i.spec
	sum, err := FileSHA256(i.bin)
	if err != nil {
		return fmt.Errorf("plugin %s: reading %s: %w", spec.ID, i.bin, err)
	}
	if sum != spec.SHA256 {
		return fmt.Errorf("plugin %s %s: checksum mismatch: %s records sha256 %s, but %s has %s; "+
			"the binary was changed after install: reinstall it with `micro plugin install` (or check it with `micro plugin verify`)",
			spec.ID, spec.Version, LockFileName, spec.SHA256, spec.Path, sum)
	}
	env, err := i.m.tls.PluginEnv()
	if err != nil {
		return fmt.Errorf("plugin %s: %w", spec.ID, err)
	}
	cmd := exec.Command(i.bin)
	// The host's environment stays out (SkipHostEnv below): only the TLS
	// material, the plugin's share of the CPUs and where to put its socket go
	// in.
	cmd.Env = []string{env, "GOMAXPROCS=" + strconv.Itoa(spec.procs())}
	if dir := i.m.socketDir(); dir != "" {
		cmd.Env = append(cmd.Env, goplugin.EnvUnixSocketDir+"="+dir)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := outputLogger(i.log)
	ended := new(atomic.Bool)
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  plugin.Handshake,
		VersionedPlugins: map[int]goplugin.PluginSet{plugin.ProtocolVersion: plugin.HostPluginSet()},
		Cmd:              cmd,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		TLSConfig:        i.m.tls.ClientConfig(),
		SkipHostEnv:      true,
		Logger:           &launchLogger{Logger: i.log, ended: ended},
		StartTimeout:     i.m.opts.StartTimeout,
		Stderr:           out,
		SyncStdout:       out,
		SyncStderr:       out,
		GRPCDialOptions:  plugin.DialOptions(i.m.opts.Telemetry, i.m.calls.observer(spec.ID)),
	})
	i.mu.Lock()
	i.client, i.pid, i.ended = client, 0, ended
	i.mu.Unlock()

	launched := time.Now()
	rpc, err := client.Client()
	// The process group to kill is this process's, known once it was started,
	// even when the handshake failed.
	pid := 0
	if cmd.Process != nil {
		pid = cmd.Process.Pid
	}
	socket := ""
	if rc := client.ReattachConfig(); rc != nil && rc.Addr != nil && rc.Addr.Network() == "unix" {
		socket = rc.Addr.String()
	}
	i.mu.Lock()
	i.pid, i.socket = pid, socket
	i.mu.Unlock()
	if err != nil {
		return i.handshakeError(err)
	}
	dispense := spec.Kind
	if dispense == "" {
		dispense = plugin.KindRegistry // any kind hands back the same connection
	}
	raw, err := rpc.Dispense(dispense)
	if err != nil {
		return fmt.Errorf("plugin %s: %w", spec.ID, err)
	}
	cc, ok := raw.(*grpc.ClientConn)
	if !ok {
		return fmt.Errorf("plugin %s: unexpected connection type %T", spec.ID, raw)
	}
	pc := pluginv1.NewPluginClient(cc)
	dctx, cancel := context.WithTimeout(ctx, i.m.opts.StartTimeout)
	defer cancel()
	info, err := pc.Describe(dctx, &pluginv1.DescribeRequest{HostProtocolVersions: []uint32{plugin.ProtocolVersion}})
	if err != nil {
		return fmt.Errorf("plugin %s: Describe failed: %w", spec.ID, plugin.FromStatus(spec.ID, err))
	}
	startup := time.Since(launched)
	if i.describeOnly {
		i.mu.Lock()
		i.info, i.startup = info, startup
		i.mu.Unlock()
		return nil
	}
	if info.Kind != spec.Kind {
		return fmt.Errorf("plugin %s is a %s plugin (%s %s), but the config uses it as a %s: point the %s block at a %s plugin",
			spec.ID, info.Kind, info.Name, info.Version, spec.Kind, spec.Kind, spec.Kind)
	}
	if !slices.Contains(info.ProtocolVersions, plugin.ProtocolVersion) {
		return fmt.Errorf("plugin %s %s speaks protocol versions %v, this host speaks %d: install a release of the plugin built for protocol %d",
			spec.ID, info.Version, info.ProtocolVersions, plugin.ProtocolVersion, plugin.ProtocolVersion)
	}
	cfg := spec.Config
	if len(cfg) == 0 {
		cfg = []byte("{}")
	}
	if err := validateConfig(spec.ID, info.ConfigSchema, cfg); err != nil {
		return err
	}
	if _, err := pc.Configure(dctx, &pluginv1.ConfigureRequest{ConfigJson: cfg, ProtocolVersion: plugin.ProtocolVersion}); err != nil {
		return fmt.Errorf("plugin %s: %w", spec.ID, plugin.FromStatus(spec.ID, err))
	}

	i.mu.Lock()
	i.cc = cc
	i.info = info
	i.up = true
	i.upSince = time.Now()
	i.startup = startup
	old := i.changed
	i.changed = make(chan struct{})
	i.mu.Unlock()
	close(old)
	i.log.Info("plugin started", "pid", pid, "name", info.Name, "described_version", info.Version, "startup", startup.String(), "gomaxprocs", spec.procs())
	return nil
}

// handshakeError explains a failed launch.
func (i *Instance) handshakeError(err error) error {
	spec := i.spec
	msg := err.Error()
	switch {
	case strings.Contains(msg, "incompatible API version"):
		theirs := "another"
		if m := pluginVersionRE.FindStringSubmatch(msg); m != nil {
			theirs = m[1]
		}
		return fmt.Errorf("plugin %s %s speaks plugin protocol version %s, but this host speaks version %d: install a release of the plugin built for protocol %d",
			spec.ID, spec.Version, theirs, plugin.ProtocolVersion, plugin.ProtocolVersion)
	case strings.Contains(msg, "Unrecognized remote plugin message"), strings.Contains(msg, "plugin exited before we could connect"):
		return fmt.Errorf("plugin %s %s: %s did not complete the Microhost handshake, so it is not a Microhost plugin (or it crashed at start; see the log above): check the source it was installed from and reinstall it (%v)",
			spec.ID, spec.Version, spec.Path, err)
	case strings.Contains(msg, "timeout while waiting"):
		return fmt.Errorf("plugin %s %s did not answer the handshake within %s: it may not be a Microhost plugin, or it hangs at start (%v)",
			spec.ID, spec.Version, i.m.opts.StartTimeout, err)
	}
	return fmt.Errorf("plugin %s %s failed to start: %w", spec.ID, spec.Version, err)
}

// supervise pings the plugin and restarts it with capped exponential backoff when
// its process exits or its health checks keep failing.
func (i *Instance) supervise() {
	defer close(i.done)
	const base = 50 * time.Millisecond
	backoff := base
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	nextHealth := time.Now().Add(i.m.opts.HealthInterval)
	failures := 0
	for {
		select {
		case <-i.stopCh:
			return
		case <-poll.C:
		}
		i.mu.Lock()
		client, up, upSince := i.client, i.up, i.upSince
		i.mu.Unlock()

		if up && !client.Exited() && time.Now().After(nextHealth) {
			nextHealth = time.Now().Add(i.m.opts.HealthInterval)
			if i.healthy() {
				failures = 0
				continue
			}
			failures++
			if failures < 3 {
				continue
			}
		} else if up && !client.Exited() {
			continue
		}

		// Down: the process exited, health failed three times, or a restart failed.
		failures = 0
		if up {
			i.log.Error("plugin died; restarting", "restarts", i.Restarts(), "up_for", time.Since(upSince).Round(time.Millisecond).String())
			if time.Since(upSince) > 10*time.Second {
				backoff = base
			}
		}
		i.mu.Lock()
		i.up = false
		i.mu.Unlock()
		i.stopProcess()
		select {
		case <-i.stopCh:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, i.m.opts.MaxBackoff)
		if err := i.start(context.Background()); err != nil {
			i.log.Error("plugin restart failed", "error", err.Error(), "next_try_in", backoff.String())
			i.stopProcess()
			continue
		}
		i.mu.Lock()
		i.restarts++
		i.mu.Unlock()
		nextHealth = time.Now().Add(i.m.opts.HealthInterval)
	}
}

// healthy pings the plugin's Health endpoint.
func (i *Instance) healthy() bool {
	cc, err := i.Current()
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, err := pluginv1.NewPluginClient(cc).Health(ctx, &pluginv1.HealthRequest{})
	if err != nil {
		i.log.Warn("plugin health check failed", "error", err.Error())
		return false
	}
	if !resp.Serving {
		i.log.Warn("plugin reports it is not serving", "detail", resp.Detail)
	}
	return resp.Serving
}

// Stop drains the plugin, stops supervising it and kills its process group.
func (i *Instance) Stop() {
	i.mu.Lock()
	if i.stopped {
		i.mu.Unlock()
		<-i.done
		return
	}
	i.stopped = true
	cc, up := i.cc, i.up
	i.mu.Unlock()
	close(i.stopCh)
	<-i.done
	if up && cc != nil {
		ctx, cancel := context.WithTimeout(context.Background(), i.m.opts.DrainTimeout+time.Second)
		_, err := pluginv1.NewPluginClient(cc).Shutdown(ctx, &pluginv1.ShutdownRequest{DrainTimeoutMs: i.m.opts.DrainTimeout.Milliseconds()})
		cancel()
		if err != nil {
			i.log.Warn("plugin did not drain cleanly", "error", err.Error())
		}
	}
	i.stopProcess()
	i.mu.Lock()
	i.up = false
	close(i.changed)
	i.changed = make(chan struct{})
	i.mu.Unlock()
	i.log.Info("plugin stopped")
}

// stopProcess ends the current process and its process group.
func (i *Instance) stopProcess() {
	i.mu.Lock()
	client, pid, ended, socket := i.client, i.pid, i.ended, i.socket
	i.client, i.pid, i.ended, i.socket = nil, 0, nil, ""
	i.mu.Unlock()
	if client == nil {
		return
	}
	ended.Store(true)
	// The group goes first: a process the plugin started may hold its output
	// pipes open, and client.Kill waits until they close.
	if pid > 0 {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	client.Kill()
	// A killed plugin cannot remove its socket file; a long-running host
	// restarting plugins would otherwise collect them.
	if socket != "" {
		if err := os.Remove(socket); err != nil && !os.IsNotExist(err) {
			i.log.Warn("cannot remove the plugin's socket", "path", socket, "error", err.Error())
		}
	}
}
