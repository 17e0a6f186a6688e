package plugin

import (
	"maps"
	"math"
	"time"

	pluginv1 "github.com/microhost/micro/sdk/plugin/proto/micro/plugin/v1"
	"github.com/microhost/micro/sdk/registry"
)

// Conversions between the registry contract's types and protocol v1 messages. They
// are nil-safe (nil in, nil out; nil list entries are skipped, since protobuf cannot
// carry them) and copy maps, so neither side shares memory with the other.

// serviceToProto converts a registry.Service into its protocol message.
func serviceToProto(s *registry.Service) *pluginv1.Service {
	if s == nil {
		return nil
	}
	p := &pluginv1.Service{Name: s.Name, Version: s.Version, Metadata: cloneRegistryMap(s.Metadata)}
	if len(s.Endpoints) > 0 {
		p.Endpoints = make([]*pluginv1.Endpoint, 0, len(s.Endpoints))
		for _, e := range s.Endpoints {
			if e != nil {
				p.Endpoints = append(p.Endpoints, &pluginv1.Endpoint{
					Name: e.Name, Request: e.Request, Response: e.Response, Metadata: cloneRegistryMap(e.Metadata),
				})
			}
		}
	}
	if len(s.Nodes) > 0 {
		p.Nodes = make([]*pluginv1.Node, 0, len(s.Nodes))
		for _, n := range s.Nodes {
			if n != nil {
				p.Nodes = append(p.Nodes, &pluginv1.Node{Id: n.ID, Address: n.Address, Metadata: cloneRegistryMap(n.Metadata)})
			}
		}
	}
	return p
}

// serviceFromProto converts a protocol message into a registry.Service.
func serviceFromProto(p *pluginv1.Service) *registry.Service {
	if p == nil {
		return nil
	}
	s := &registry.Service{Name: p.GetName(), Version: p.GetVersion(), Metadata: cloneRegistryMap(p.GetMetadata())}
	if eps := p.GetEndpoints(); len(eps) > 0 {
		s.Endpoints = make([]*registry.Endpoint, 0, len(eps))
		for _, e := range eps {
			if e != nil {
				s.Endpoints = append(s.Endpoints, &registry.Endpoint{
					Name: e.GetName(), Request: e.GetRequest(), Response: e.GetResponse(), Metadata: cloneRegistryMap(e.GetMetadata()),
				})
			}
		}
	}
	if nodes := p.GetNodes(); len(nodes) > 0 {
		s.Nodes = make([]*registry.Node, 0, len(nodes))
		for _, n := range nodes {
			if n != nil {
				s.Nodes = append(s.Nodes, &registry.Node{ID: n.GetId(), Address: n.GetAddress(), Metadata: cloneRegistryMap(n.GetMetadata())})
			}
		}
	}
	return s
}

// servicesToProto converts a list of services, skipping nil entries.
func servicesToProto(svcs []*registry.Service) []*pluginv1.Service {
	if len(svcs) == 0 {
		return nil
	}
	out := make([]*pluginv1.Service, 0, len(svcs))
	for _, s := range svcs {
		if s != nil {
			out = append(out, serviceToProto(s))
		}
	}
	return out
}

// servicesFromProto converts a list of service messages, skipping nil entries.
func servicesFromProto(ps []*pluginv1.Service) []*registry.Service {
	if len(ps) == 0 {
		return nil
	}
	out := make([]*registry.Service, 0, len(ps))
	for _, p := range ps {
		if p != nil {
			out = append(out, serviceFromProto(p))
		}
	}
	return out
}

// eventToProto converts a registry.Event; a zero Timestamp travels as 0.
func eventToProto(ev *registry.Event) *pluginv1.WatchEvent {
	if ev == nil {
		return nil
	}
	p := &pluginv1.WatchEvent{Type: eventTypeToProto(ev.Type), Service: serviceToProto(ev.Service)}
	if !ev.Timestamp.IsZero() {
		p.TimestampUnixNano = ev.Timestamp.UnixNano()
	}
	return p
}

// eventFromProto converts a WatchEvent; ok is false for an event type this
// version does not know, which the host skips rather than misapplies.
func eventFromProto(p *pluginv1.WatchEvent) (ev *registry.Event, ok bool) {
	if p == nil {
		return nil, false
	}
	t := eventTypeFromProto(p.GetType())
	if t == 0 {
		return nil, false
	}
	ev = &registry.Event{Type: t, Service: serviceFromProto(p.GetService())}
	if ns := p.GetTimestampUnixNano(); ns != 0 {
		ev.Timestamp = time.Unix(0, ns)
	}
	return ev, true
}

// eventTypeToProto maps create/update/delete to their enum values.
func eventTypeToProto(t registry.EventType) pluginv1.WatchEvent_Type {
	switch t {
	case registry.Create:
		return pluginv1.WatchEvent_TYPE_CREATE
	case registry.Update:
		return pluginv1.WatchEvent_TYPE_UPDATE
	case registry.Delete:
		return pluginv1.WatchEvent_TYPE_DELETE
	}
	return pluginv1.WatchEvent_TYPE_UNSPECIFIED
}

// eventTypeFromProto maps the enum back; 0 means unknown.
func eventTypeFromProto(t pluginv1.WatchEvent_Type) registry.EventType {
	switch t {
	case pluginv1.WatchEvent_TYPE_CREATE:
		return registry.Create
	case pluginv1.WatchEvent_TYPE_UPDATE:
		return registry.Update
	case pluginv1.WatchEvent_TYPE_DELETE:
		return registry.Delete
	}
	return 0
}

// ttlToMillis converts a TTL for the wire: <= 0 stays 0 (no expiry) and a positive
// TTL under a millisecond becomes 1ms rather than "no expiry".
func ttlToMillis(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return max(ttl.Milliseconds(), 1)
}

// ttlFromMillis converts a wire TTL back, saturating instead of overflowing.
func ttlFromMillis(ms int64) time.Duration {
	switch {
	case ms <= 0:
		return 0
	case ms > math.MaxInt64/int64(time.Millisecond):
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(ms) * time.Millisecond
}

// cloneRegistryMap returns a copy of m, nil when m is empty.
func cloneRegistryMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}
