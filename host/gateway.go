package host

import (
	"context"
	"fmt"
	"time"

	"github.com/microhost/micro/gateway"
)

// gatewayDrain bounds how long the gateway lets requests in flight finish on stop.
const gatewayDrain = 10 * time.Second

// gatewayOptions are the dependencies the gateway calls services through: the
// host's own registry, transport, codecs and selector.
func (h *Host) gatewayOptions() []gateway.Option {
	opts := []gateway.Option{
		gateway.Registry(h.comp.registry),
		gateway.Transport(h.comp.transport),
		gateway.Codecs(h.comp.codecs),
		gateway.Selector(h.comp.selector),
		gateway.Logger(h.log.Named("gateway").Warn),
	}
	if h.sec != nil {
		opts = append(opts, h.sec.gatewayOption())
	}
	return append(opts, h.gatewayTelemetry()...)
}

// gatewayConfig is the config's gateway with the listen override applied.
func (h *Host) gatewayConfig() gateway.Config {
	cfg := h.cfg.Gateway.Config
	if h.opts.gatewayListen != "" {
		cfg.Listen = h.opts.gatewayListen
	}
	return cfg
}

// buildGateway builds (and so validates) the configured gateway; it listens
// only once Run has the services ready. A child service runs none.
func (h *Host) buildGateway() error {
	if h.cfg.Gateway == nil || h.isChild() {
		return nil
	}
	g, err := gateway.New(h.gatewayConfig(), h.gatewayOptions()...)
	if err != nil {
		return fmt.Errorf("%s: %w", rangeString(h.cfg.Gateway.Range), err)
	}
	h.gw.Lock()
	h.gateway = g
	h.gw.Unlock()
	return nil
}

// Gateway returns the host's API gateway, nil when the config has none.
func (h *Host) Gateway() *gateway.Gateway {
	h.gw.Lock()
	defer h.gw.Unlock()
	return h.gateway
}

// adoptGateway takes over old's serving gateway when both listen on the same
// address, so a reload keeps the listener and swaps the routes atomically
// once the new services are ready, instead of closing the port.
func (h *Host) adoptGateway(old *Host) {
	old.gw.Lock()
	defer old.gw.Unlock()
	h.gw.Lock()
	defer h.gw.Unlock()
	if old.gateway == nil || !old.gatewayServing || h.gateway == nil || old.gateway.Config().Listen != h.gatewayConfig().Listen {
		return
	}
	h.gateway.Close() // built to validate the new config; never served
	h.gateway, h.gatewayServing, h.gatewayAdopted = old.gateway, true, true
	old.gateway, old.gatewayServing = nil, false
}

// startGateway serves the gateway, or swaps the new routes into the adopted one.
func (h *Host) startGateway(ctx context.Context) error {
	h.gw.Lock()
	defer h.gw.Unlock()
	if h.gateway == nil {
		return nil
	}
	if h.gatewayAdopted {
		if err := h.gateway.Reload(h.gatewayConfig(), h.gatewayOptions()...); err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		h.log.Info("gateway routes swapped", "address", h.gateway.Addr())
		return nil
	}
	if err := h.gateway.Start(ctx); err != nil {
		return fmt.Errorf("%s: %w (set another gateway listen address, or micro run --gateway ADDR)", rangeString(h.cfg.Gateway.ListenRange), err)
	}
	h.gatewayServing = true
	h.log.Info("gateway ready", "address", h.gateway.Addr(), "docs", "http://"+h.gateway.Addr()+"/api/docs")
	return nil
}

// stopGateway drains the gateway unless a reloaded host took it over.
func (h *Host) stopGateway() {
	h.gw.Lock()
	g := h.gateway
	h.gateway, h.gatewayServing = nil, false
	h.gw.Unlock()
	if g == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), gatewayDrain)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		h.log.Warn("gateway drain", "error", err.Error())
	}
}
