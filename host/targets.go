package host

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/microhost/micro/host/config"
)

// endpointCheckTimeout bounds the registry lookups of warnUnknownEndpoints: a
// slow registry delays being ready by at most this.
const endpointCheckTimeout = 2 * time.Second

// warnUnknownEndpoints warns, once the services are ready, about gateway
// routes and parts that call an endpoint a service this host runs does not
// serve: config cannot know a service's endpoints, and without the warning
// a typo shows only as a 404 on the first request.
func (h *Host) warnUnknownEndpoints(ctx context.Context) {
	if h.cfg.Gateway == nil || h.isChild() { // a child runs no gateway; its host warns
		return
	}
	for _, w := range h.unknownEndpoints(ctx, h.cfg.Gateway.Targets) {
		h.log.Warn(w)
	}
}

// unknownEndpoints returns a warning for each target whose service this host
// runs and has registered, and whose endpoint it does not serve. A name with
// a {param} in it is known only per request, so it is not checked.
func (h *Host) unknownEndpoints(ctx context.Context, targets []config.Target) []string {
	served := map[string][]string{} // service → its endpoints, sorted
	var warnings []string
	for _, t := range targets {
		if t.Endpoint == "" || strings.Contains(t.Service, "{") || strings.Contains(t.Endpoint, "{") || !h.runs(t.Service) {
			continue
		}
		names, looked := served[t.Service]
		if !looked {
			names = h.registeredEndpoints(ctx, t.Service)
			served[t.Service] = names
		}
		if len(names) == 0 || slices.Contains(names, t.Endpoint) {
			continue
		}
		warnings = append(warnings, fmt.Sprintf("%s: Unknown endpoint %q; %s calls %s %s, which the running %s does not serve, so it will answer 404; expected one of: %s",
			rangeString(t.EndpointRange), t.Endpoint, t.From, t.Service, t.Endpoint, t.Service, strings.Join(names, ", ")))
	}
	return warnings
}

// runs reports whether the config declares service, embedded or as a child.
func (h *Host) runs(service string) bool {
	return slices.ContainsFunc(h.cfg.Services, func(s *config.Service) bool { return s.Name == service })
}

// registeredEndpoints returns the endpoints the registry lists for service,
// across its versions, sorted; none when it cannot say.
func (h *Host) registeredEndpoints(ctx context.Context, service string) []string {
	svcs, err := h.Registry().GetService(ctx, service)
	if err != nil {
		return nil
	}
	var names []string
	for _, s := range svcs {
		for _, ep := range s.Endpoints {
			if !slices.Contains(names, ep.Name) {
				names = append(names, ep.Name)
			}
		}
	}
	slices.Sort(names)
	return names
}
