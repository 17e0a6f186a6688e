package config

import (
	"regexp"
	"slices"

	"github.com/microhost/micro/sdk/codec"
	"github.com/microhost/micro/sdk/registry"
)

// The plugin kinds, as sdk/plugin.Kinds lists them (this package does not import
// sdk/plugin, which pulls in gRPC and the plugin protocol).
const (
	kindRegistry  = "registry"
	kindBroker    = "broker"
	kindTransport = "transport"
	kindCodec     = "codec"
)

var pluginKinds = []string{kindRegistry, kindBroker, kindTransport, kindCodec}

// Built-in component names, as the sdk's constructors call themselves.
var (
	builtinRegistries = []string{"memory"}
	builtinBrokers    = []string{"memory"}
	builtinTransports = []string{"http"}
	builtinCodecs     = codec.BuiltinNames()
)

// builtinNames returns the built-in names of a kind.
func builtinNames(kind string) []string {
	switch kind {
	case kindRegistry:
		return builtinRegistries
	case kindBroker:
		return builtinBrokers
	case kindTransport:
		return builtinTransports
	case kindCodec:
		return builtinCodecs
	}
	return nil
}

// selectorNames are the selectors registry.SelectorByName builds, in the order
// messages list them.
var selectorNames = []string{"round_robin", "random", "least_outstanding"}

// validSelector reports whether the registry package knows the selector.
func validSelector(name string) bool {
	_, err := registry.SelectorByName(name)
	return err == nil
}

var (
	logLevels  = []string{"trace", "debug", "info", "warn", "error"}
	logFormats = []string{"auto", "text", "json"}
)

var (
	// pluginNameRE is a plugin's name after its kind, as `micro plugin install` accepts it.
	pluginNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	// pluginVersionRE is a plugin version as micro.lock.hcl records it.
	pluginVersionRE = regexp.MustCompile(`^v?[0-9A-Za-z][0-9A-Za-z.+_-]*$`)
	// serviceNameRE is a service name: it becomes the {Service} of /{Service}.{Method}.
	serviceNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
)

func isOneOf(s string, names []string) bool { return slices.Contains(names, s) }
