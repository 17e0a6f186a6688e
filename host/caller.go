package host

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/hashicorp/go-hclog"

	"github.com/microhost/micro/host/config"
	"github.com/microhost/micro/host/plugins"
	"github.com/microhost/micro/sdk/transport"
)

// CallerTransport starts the transport plugin cfg names, for a caller outside
// the host (micro call) that must reach the services over their own transport.
// The plugin comes from micro.lock.hcl in dir, as micro run starts it. It
// returns nil when cfg uses the built-in http transport; stop stops the plugin.
func CallerTransport(ctx context.Context, cfg *config.Config, dir string, log hclog.Logger) (tr transport.Transport, stop func(), err error) {
	id := cfg.Transport.Plugin
	if id == "" {
		return nil, func() {}, nil
	}
	var block *config.Plugin
	for _, p := range cfg.Plugins {
		if p.ID == id {
			block = p
		}
	}
	if block == nil { // config.Load refuses this; a hand-built Config may not
		return nil, nil, fmt.Errorf("transport %q needs a plugin %q block", cfg.Transport.Name, id)
	}
	lockPath := filepath.Join(dir, plugins.LockFileName)
	lock, err := plugins.ReadLock(lockPath)
	if err != nil {
		return nil, nil, err
	}
	spec, err := pluginSpec(block, lock, lockPath, "")
	if err != nil {
		return nil, nil, err
	}
	m, err := plugins.NewManager(plugins.Options{Logger: log})
	if err != nil {
		return nil, nil, err
	}
	inst, err := m.Start(ctx, spec)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("%s: %w", rangeString(block.Range), err)
	}
	return inst.Transport(), func() { m.Close() }, nil
}
