package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/microhost/micro/host/config"
)

// reloadPoll is how often RunReloading looks at the config file.
const reloadPoll = 500 * time.Millisecond

// RunReloading runs a host built from opts (which must name a config file with
// WithConfigFile) and replaces it when SIGHUP arrives or the file changes. The
// new config is loaded, validated and provisioned in full (plugins started)
// before the old host stops; a config that fails leaves the running host
// untouched and logs why. A new config that provisions but fails to start (an
// address taken, say) is replaced with the last one that ran.
func RunReloading(ctx context.Context, log hclog.Logger, opts ...Option) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	// One registry for every host the reloads build, so counters go on.
	opts = append(opts[:len(opts):len(opts)], WithMetricsRegistry(prometheus.NewRegistry()))
	h, err := New(ctx, opts...)
	if err != nil {
		return err
	}
	if log == nil {
		log = h.log
	}
	path := h.opts.configFile
	stamp := fileStamp(path)
	tick := time.NewTicker(reloadPoll)
	defer tick.Stop()
	// good is the config of the last system that became ready: what a
	// reloaded config that fails to start is replaced with. fallback says h
	// was built from it after such a failure.
	var good *config.Config
	fallback := false
run:
	for {
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func(h *Host) { done <- h.Run(runCtx) }(h)

		var next *Host
		for next == nil {
			select {
			case err := <-done:
				cancel()
				if h.isReady() || good == nil || fallback || ctx.Err() != nil {
					return err
				}
				// The new config provisioned but did not start (a port
				// taken, a child service that exited): the system that ran
				// before comes back rather than nothing serving.
				log.Error("the new config failed to start; going back to the previous one", "error", errorText(err))
				back, berr := New(ctx, append(opts[:len(opts):len(opts)], WithConfig(good))...)
				if berr != nil {
					return errors.Join(err, fmt.Errorf("going back to the previous config: %w", berr))
				}
				h, fallback = back, true
				continue run
			case <-hup:
				log.Info("SIGHUP: reloading the config", "file", path)
			case <-tick.C:
				s := fileStamp(path)
				if s == stamp {
					continue
				}
				stamp = s
				log.Info("the config file changed: reloading", "file", path)
			}
			n, err := New(ctx, opts...)
			if err != nil {
				log.Error("the new config was refused; the running system is untouched", "error", err.Error())
				continue
			}
			next = n
		}
		if h.isReady() {
			good = h.cfg
		}
		fallback = false
		next.adoptGateway(h)
		cancel()
		if err := <-done; err != nil {
			log.Warn("the old system stopped with an error", "error", err.Error())
		}
		log.Info("switched to the new config")
		h = next
	}
}

// fileStamp identifies a version of a file by size and modification time.
func fileStamp(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%d/%d", st.ModTime().UnixNano(), st.Size())
}

// errorText is err's message, for a log line.
func errorText(err error) string {
	if err == nil {
		return "stopped before it was ready"
	}
	return err.Error()
}
