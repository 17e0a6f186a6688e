package host

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/microhost/micro/sdk/broker"
	"github.com/microhost/micro/sdk/plugin"
	pluginv1 "github.com/microhost/micro/sdk/plugin/proto/micro/plugin/v1"
	"github.com/microhost/micro/sdk/registry"
)

// The environment a host hands its child services, so they share its registry
// and broker through the bridge.
const (
	EnvBridge    = "MICRO_HOST_BRIDGE"     // the bridge's loopback address
	EnvBridgeTLS = "MICRO_HOST_BRIDGE_TLS" // a client TLS bundle for it
	EnvService   = "MICRO_SERVICE"         // which service block the child runs
	EnvConfig    = "MICRO_CONFIG"          // the config file the child reads
)

// StateFile is where a running host leaves the bridge's address and a client
// credential (mode 0600), relative to the config's directory, so `micro
// services` and `micro call` can reach the host's registry.
const StateFile = ".micro/host.json"

// bridge serves the host's registry and broker over the plugin protocol on a
// loopback port with mutual TLS: child services and the CLI use them as if they
// were a plugin, so every process sees one registry even when it is the
// in-memory one.
type bridge struct {
	srv    *grpc.Server
	ln     net.Listener
	bundle string // a client bundle for children and the CLI
}

func startBridge(tlsm *plugin.HostTLS, reg registry.Registry, b broker.Broker) (*bridge, error) {
	serverBundle, err := tlsm.ServerBundle()
	if err != nil {
		return nil, err
	}
	clientBundle, err := tlsm.ClientBundle()
	if err != nil {
		return nil, err
	}
	cfg, err := plugin.ServerTLSFromBundle(serverBundle)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("host bridge: %w", err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)))
	pluginv1.RegisterRegistryServer(srv, plugin.NewRegistryServer(reg))
	pluginv1.RegisterBrokerServer(srv, plugin.NewBrokerServer(b))
	go srv.Serve(ln)
	return &bridge{srv: srv, ln: ln, bundle: clientBundle}, nil
}

func (b *bridge) addr() string { return b.ln.Addr().String() }

// env is what a child service needs to reach the bridge.
func (b *bridge) env() []string {
	return []string{EnvBridge + "=" + b.addr(), EnvBridgeTLS + "=" + b.bundle}
}

func (b *bridge) stop() { b.srv.Stop() }

// hostState is the content of StateFile.
type hostState struct {
	Bridge string `json:"bridge"`
	TLS    string `json:"tls"`
	PID    int    `json:"pid"`
}

// writeState records the bridge for the CLI.
func (b *bridge) writeState(dir string) (string, error) {
	path := filepath.Join(dir, StateFile)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	data, _ := json.Marshal(hostState{Bridge: b.addr(), TLS: b.bundle, PID: os.Getpid()})
	// A new file (mode 0600, never an existing file or link of that name), so
	// the credential is readable by its owner only.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".host-*.json")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return path, os.Rename(tmp.Name(), path)
}

// Remote is a connection to a running host's bridge: its registry and broker.
type Remote struct {
	cc       *grpc.ClientConn
	Registry registry.Registry
	Broker   broker.Broker
}

// Close closes the connection.
func (r *Remote) Close() error {
	r.Broker.Close()
	return r.cc.Close()
}

// DialBridge connects to a host's bridge at addr with a client TLS bundle.
func DialBridge(addr, bundle string) (*Remote, error) {
	cfg, err := plugin.ClientTLSFromBundle(bundle)
	if err != nil {
		return nil, err
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		return nil, fmt.Errorf("host bridge %s: %w", addr, err)
	}
	conn := plugin.StaticConn(cc)
	return &Remote{cc: cc, Registry: plugin.NewRegistryClient("host", conn), Broker: plugin.NewBrokerClient("host", conn)}, nil
}

// DialRunning connects to the host running with its config in dir, from the
// state file it left there.
func DialRunning(dir string) (*Remote, error) {
	data, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no host is running here (%s is missing): start one with `micro run`", filepath.Join(dir, StateFile))
	}
	if err != nil {
		return nil, err
	}
	var st hostState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, StateFile), err)
	}
	if st.PID <= 0 || syscall.Kill(st.PID, 0) != nil {
		return nil, fmt.Errorf("no host is running here (%s names process %d, which is gone): start one with `micro run`", filepath.Join(dir, StateFile), st.PID)
	}
	// The process may be a killed host not yet reaped, or another process that
	// took its pid: only the bridge answering tells.
	conn, err := net.DialTimeout("tcp", st.Bridge, 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("no host answers here (%s names process %d, whose bridge %s does not answer: %w): if that host was killed, start one with `micro run`",
			filepath.Join(dir, StateFile), st.PID, st.Bridge, err)
	}
	conn.Close()
	return DialBridge(st.Bridge, st.TLS)
}
