package plugins_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/microhost/micro/host/plugins"
	"github.com/microhost/micro/sdk/broker"
	"github.com/microhost/micro/sdk/codec"
	"github.com/microhost/micro/sdk/conformance"
	"github.com/microhost/micro/sdk/registry"
	"github.com/microhost/micro/sdk/transport"
)

// The same conformance suites the built-ins pass in-process, run against the
// built-ins served as plugin processes: the boundary must be transparent.

func startPlugin(t *testing.T, m *plugins.Manager, s plugins.Spec) *plugins.Instance {
	t.Helper()
	inst, err := m.Start(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(inst.Stop)
	return inst
}

func TestRegistryPluginConformance(t *testing.T) {
	m, _ := newManager(t)
	conformance.Registry(t, func(t *testing.T) registry.Registry {
		return startPlugin(t, m, spec(t, "registry-memory")).Registry()
	})
}

func TestBrokerPluginConformance(t *testing.T) {
	m, _ := newManager(t)
	conformance.Broker(t, func(t *testing.T) broker.Broker {
		b := startPlugin(t, m, spec(t, "broker-memory")).Broker()
		t.Cleanup(func() { b.Close() })
		return b
	})
}

func TestTransportPluginConformance(t *testing.T) {
	for _, cfg := range []string{`{}`, `{"http2":true}`} {
		t.Run(cfg, func(t *testing.T) {
			m, _ := newManager(t)
			conformance.Transport(t, func(t *testing.T) transport.Transport {
				s := spec(t, "transport-http")
				s.Config = json.RawMessage(cfg)
				tr := startPlugin(t, m, s).Transport()
				t.Cleanup(func() { tr.Close() })
				return tr
			}, conformance.ExpectNotSent())
		})
	}
}

func TestWebSocketTransportPluginConformance(t *testing.T) {
	m, _ := newManager(t)
	conformance.Transport(t, func(t *testing.T) transport.Transport {
		s := spec(t, "transport-ws")
		s.Config = json.RawMessage(`{"max_conns":2}`)
		tr := startPlugin(t, m, s).Transport()
		t.Cleanup(func() { tr.Close() })
		return tr
	}, conformance.ExpectNotSent())
}

func TestCodecPluginConformance(t *testing.T) {
	m, _ := newManager(t)
	inst := startPlugin(t, m, spec(t, "codec-msgpack"))
	if c := inst.Codec(); c.Name() != "msgpack" || c.ContentType() != "application/msgpack" {
		t.Fatalf("codec plugin describes itself as %s %s", c.Name(), c.ContentType())
	}
	conformance.Codec(t, func(t *testing.T) codec.Codec { return inst.Codec() })
}
