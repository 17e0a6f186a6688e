package host

import (
	"context"
	"crypto/tls"
	"fmt"
	"reflect"
	"time"

	"github.com/microhost/micro/gateway"
	"github.com/microhost/micro/sdk/auth/tlsconfig"
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
	var certs *tlsconfig.Reloader
	if files := h.cfg.Gateway.TLS; files != nil {
		if err := h.cfg.Gateway.Check(); err != nil {
			g.Close()
			return err
		}
		if certs, err = tlsconfig.New(*files, tlsconfig.Logger(h.log.Named("gateway").Warn)); err != nil {
			g.Close()
			return fmt.Errorf("%s: gateway tls: %w", rangeString(h.cfg.Gateway.TLSRange), err)
		}
	}
	h.gw.Lock()
	h.gateway, h.gatewayCerts = g, certs
	h.gw.Unlock()
	return nil
}

// GatewayURL is the gateway's base URL, https:// when it serves TLS; "" when
// it is not serving.
func (h *Host) GatewayURL() string {
	h.gw.Lock()
	defer h.gw.Unlock()
	if h.gateway == nil || h.gateway.Addr() == "" {
		return ""
	}
	if h.gatewayCerts != nil {
		return "https://" + h.gateway.Addr()
	}
	return "http://" + h.gateway.Addr()
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
	if old.gateway == nil || !old.gatewayServing || h.gateway == nil || old.gateway.Config().Listen != h.gatewayConfig().Listen ||
		!reflect.DeepEqual(old.cfg.Gateway.TLS, h.cfg.Gateway.TLS) {
		return
	}
	h.gateway.Close() // built to validate the new config; never served
	if h.gatewayCerts != nil {
		h.gatewayCerts.Close() // the adopted gateway keeps its own, reloading the same files
	}
	h.gateway, h.gatewayCerts, h.gatewayServing, h.gatewayAdopted = old.gateway, old.gatewayCerts, true, true
	old.gateway, old.gatewayCerts, old.gatewayServing = nil, nil, false
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
	var tlsCfg *tls.Config
	if h.gatewayCerts != nil {
		var err error
		if tlsCfg, err = h.gatewayCerts.ServerConfig(); err != nil {
			return fmt.Errorf("%s: gateway tls: %w", rangeString(h.cfg.Gateway.TLSRange), err)
		}
	}
	if err := h.gateway.StartTLS(ctx, tlsCfg); err != nil {
		return fmt.Errorf("%s: %w (set another gateway listen address, or micro run --gateway ADDR)", rangeString(h.cfg.Gateway.ListenRange), err)
	}
	h.gatewayServing = true
	scheme := "http://"
	if tlsCfg != nil {
		scheme = "https://"
	}
	h.log.Info("gateway ready", "address", h.gateway.Addr(), "docs", scheme+h.gateway.Addr()+"/api/docs")
	return nil
}

// stopGateway drains the gateway unless a reloaded host took it over.
func (h *Host) stopGateway() {
	h.gw.Lock()
	g, certs := h.gateway, h.gatewayCerts
	h.gateway, h.gatewayCerts, h.gatewayServing = nil, nil, false
	h.gw.Unlock()
	if certs != nil {
		defer certs.Close()
	}
	if g == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), gatewayDrain)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		h.log.Warn("gateway drain", "error", err.Error())
	}
}
