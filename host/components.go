package host

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/microhost/micro/host/config"
	"github.com/microhost/micro/host/plugins"
	"github.com/microhost/micro/sdk/broker"
	"github.com/microhost/micro/sdk/codec"
	"github.com/microhost/micro/sdk/registry"
	"github.com/microhost/micro/sdk/transport"
)

// components are what services share: built-ins or plugins, behind the same
// interfaces.
type components struct {
	registry  registry.Registry
	selector  registry.Selector
	broker    broker.Broker
	transport transport.Transport
	codecs    *codec.Set
	plugins   map[string]*plugins.Instance // by plugin id
	owned     []func() error               // closers of built-ins this host created
}

// provision starts every plugin the config uses and builds the components. On
// error everything started so far is stopped by the caller closing the manager.
func (h *Host) provision(ctx context.Context) (*components, error) {
	cfg := h.cfg
	c := &components{plugins: map[string]*plugins.Instance{}}
	if err := h.startPlugins(ctx, c); err != nil {
		return nil, err
	}

	sel, err := registry.SelectorByName(cfg.Registry.Selector)
	if err != nil {
		return nil, err
	}
	c.selector = sel

	if h.isChild() {
		c.registry = h.remote.Registry
	} else if cfg.Registry.Plugin != "" {
		c.registry = c.plugins[cfg.Registry.Plugin].Registry()
	} else {
		mem := registry.NewMemory()
		c.registry = mem
		c.owned = append(c.owned, mem.Close)
	}

	switch {
	case h.isChild():
		c.broker = h.remote.Broker
	case cfg.Broker.Plugin != "":
		c.broker = c.plugins[cfg.Broker.Plugin].Broker()
	default:
		c.broker = broker.NewMemory()
		c.owned = append(c.owned, c.broker.Close)
	}

	if cfg.Transport.Plugin != "" {
		c.transport = c.plugins[cfg.Transport.Plugin].Transport()
	} else {
		t := cfg.Transport
		opts := []transport.HTTPOption{
			transport.HTTP2(t.HTTP2),
			transport.MaxBodyBytes(t.MaxBody),
			transport.Pool(transport.PoolOptions{MaxOpen: t.Pool.MaxOpen, MaxIdle: t.Pool.MaxIdle, WaitTimeout: t.Pool.WaitTimeout, IdleTimeout: t.Pool.IdleTimeout}),
		}
		// TLS, when configured, reads its certificates through the reloader on
		// every handshake, so replaced files take effect without a restart.
		c.transport = transport.NewHTTP(append(opts, h.sec.httpOptions()...)...)
	}
	c.owned = append(c.owned, c.transport.Close)

	var list []codec.Codec
	for _, cc := range cfg.Codecs {
		if cc.Plugin != "" {
			list = append(list, c.plugins[cc.Plugin].Codec())
			continue
		}
		b, ok := codec.Builtin(cc.Name)
		if !ok {
			return nil, fmt.Errorf("%s: codec %q is not built in; built-in codecs are %v", rangeString(cc.Range), cc.Name, codec.BuiltinNames())
		}
		list = append(list, b)
	}
	c.codecs = codec.NewSet(list...)
	return c, nil
}

// startPlugins starts each plugin block's plugin from micro.lock.hcl.
func (h *Host) startPlugins(ctx context.Context, c *components) error {
	if len(h.cfg.Plugins) == 0 {
		return nil
	}
	lockPath := h.opts.lockFile
	if lockPath == "" {
		lockPath = filepath.Join(h.dir(), plugins.LockFileName)
	}
	lock, err := plugins.ReadLock(lockPath)
	if err != nil {
		return err
	}
	for _, p := range h.cfg.Plugins {
		if h.isChild() && (p.Kind == "registry" || p.Kind == "broker") {
			continue // a child service uses its host's registry and broker
		}
		spec, err := pluginSpec(p, lock, lockPath, h.opts.pluginDir)
		if err != nil {
			return err
		}
		inst, err := h.manager.Start(ctx, spec)
		if err != nil {
			return fmt.Errorf("%s: %w", rangeString(p.Range), err)
		}
		c.plugins[p.ID] = inst
	}
	return nil
}

// pluginSpec is what starts plugin block p: the version and checksum lock
// records for it, and its binary, in pluginDir (the default one when empty)
// unless lock names another path.
func pluginSpec(p *config.Plugin, lock *plugins.Lock, lockPath, pluginDir string) (plugins.Spec, error) {
	entry := lock.Get(p.ID)
	if entry == nil {
		return plugins.Spec{}, fmt.Errorf("%s: plugin %s is not installed (%s has no entry for it): run `micro plugin install %s`",
			rangeString(p.Range), p.ID, lockPath, sourceOr(p))
	}
	if p.Version != "" && p.Version != entry.Version {
		return plugins.Spec{}, fmt.Errorf("%s: plugin %s: micro.hcl asks for version %s but %s has %s: run `micro plugin install %s` or change the version",
			rangeString(p.VersionRange), p.ID, p.Version, lockPath, entry.Version, sourceOr(p))
	}
	path := entry.Path
	if path == "" {
		dir, source := pluginDir, "the one the host was given"
		if dir == "" {
			var err error
			if dir, err = plugins.DefaultDir(); err != nil {
				return plugins.Spec{}, err
			}
			source = plugins.DefaultDirSource()
		}
		path = plugins.InstalledPath(dir, p.ID, entry.Version)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return plugins.Spec{}, fmt.Errorf("%s: plugin %s %s is recorded in %s but is not in the plugin directory %s (%s): "+
				"install it there with `micro plugin install %s`, or set $%s (or micro run's --dir) to the directory it was installed in",
				rangeString(p.Range), p.ID, entry.Version, lockPath, dir, source, installSource(p, entry), plugins.EnvPluginDir)
		}
	}
	return plugins.Spec{ID: p.ID, Kind: p.Kind, Version: entry.Version, Path: path, SHA256: entry.SHA256, Config: p.Config, Procs: p.Procs}, nil
}

// installSource is what to install p from again: its block's source, else the
// one the lock file recorded.
func installSource(p *config.Plugin, entry *plugins.LockedPlugin) string {
	if p.Source == "" && entry.Source != "" {
		return entry.Source
	}
	return sourceOr(p)
}

func sourceOr(p *config.Plugin) string {
	if p.Source != "" {
		return p.Source
	}
	return "<source>"
}

// close releases the built-ins the host created (plugins stop with the manager).
func (c *components) close() {
	for i := len(c.owned) - 1; i >= 0; i-- {
		_ = c.owned[i]()
	}
}
