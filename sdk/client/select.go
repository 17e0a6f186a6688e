package client

import (
	"github.com/microhost/micro/sdk/registry"
	"github.com/microhost/micro/sdk/transport"
)

// SelectNode chooses the node of services for one try of a call: one opts let
// through, preferably not in tried and not found down by t's health checks, but
// any of those rather than none. The gateway chooses its backends' nodes so too.
func SelectNode(sel registry.Selector, t transport.Transport, services []*registry.Service, tried []string, opts ...registry.SelectOption) (*registry.Node, registry.Done, error) {
	exclude := tried
	if hr, ok := t.(transport.HealthReporter); ok {
		exclude = appendUnhealthy(exclude, services, hr)
	}
	if len(exclude) == 0 {
		return sel.Select(services, opts...)
	}
	node, done, err := sel.Select(services, append(opts[:len(opts):len(opts)], registry.Exclude(exclude...))...)
	if err != nil || node == nil {
		// Every other node was tried or failed its health check: a node that is
		// known to be there beats none, so choose again among all of them.
		node, done, err = sel.Select(services, opts...)
	}
	return node, done, err
}

// appendUnhealthy adds to exclude the IDs of the nodes hr finds down.
func appendUnhealthy(exclude []string, services []*registry.Service, hr transport.HealthReporter) []string {
	for _, s := range services {
		for _, n := range s.Nodes {
			if !hr.Healthy(n.Address) {
				exclude = append(exclude[:len(exclude):len(exclude)], n.ID)
			}
		}
	}
	return exclude
}
