package plugin

import (
	"context"
	"fmt"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// ProtocolVersion is the plugin protocol this SDK speaks (sdk/plugin/proto/micro/plugin/v1).
const ProtocolVersion = 1

// Handshake is Microhost's go-plugin handshake: a plugin binary started without
// the cookie refuses to run, and a binary that is not a Microhost plugin never
// prints a line the host accepts.
var Handshake = goplugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "MICROHOST_PLUGIN",
	MagicCookieValue: "7c1f4b2e-microhost-plugin-v1",
}

// The kinds of plugin, as Describe reports them and go-plugin dispenses them.
const (
	KindRegistry  = "registry"
	KindBroker    = "broker"
	KindTransport = "transport"
	KindCodec     = "codec"
)

// Kinds lists every plugin kind.
var Kinds = []string{KindRegistry, KindBroker, KindTransport, KindCodec}

// EnvTLS carries the plugin's TLS material (PEM) from the host; see tls.go.
const EnvTLS = "MICROHOST_PLUGIN_TLS"

// HostPluginSet is the go-plugin set a host dispenses from: every kind hands back
// the plugin's *grpc.ClientConn, and Describe then says what the plugin really is.
func HostPluginSet() goplugin.PluginSet {
	set := goplugin.PluginSet{}
	for _, k := range Kinds {
		set[k] = hostStub{}
	}
	return set
}

// hostStub is the host's half of the go-plugin glue.
type hostStub struct {
	goplugin.NetRPCUnsupportedPlugin
}

func (hostStub) GRPCServer(*goplugin.GRPCBroker, *grpc.Server) error {
	return fmt.Errorf("the host side of a Microhost plugin does not serve")
}

func (hostStub) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, cc *grpc.ClientConn) (any, error) {
	return cc, nil
}
