package config

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/microhost/micro/gateway"
	"github.com/microhost/micro/sdk/auth/tlsconfig"
)

// FileName is the configuration file `micro run` looks for.
const FileName = "micro.hcl"

// Defaults applied when micro.hcl leaves a value out.
const (
	DefaultServiceVersion = "latest"         // service version
	DefaultServiceAddress = "127.0.0.1:0"    // service listen address (any free port)
	DefaultServiceTTL     = 30 * time.Second // service registration TTL
	DefaultDrainTimeout   = 10 * time.Second // service drain on shutdown
	DefaultSelector       = "round_robin"    // registry selector
	DefaultMaxBody        = 4 << 20          // http transport body limit (4 MiB)
	DefaultPoolMaxOpen    = 256              // http transport connections per address
	DefaultPoolMaxIdle    = 64               // http transport idle connections per address
	DefaultPoolWait       = 5 * time.Second  // http transport wait for a free connection
	DefaultPoolIdle       = 90 * time.Second // http transport keep-alive idle timeout
	DefaultGatewayListen  = "127.0.0.1:8080" // gateway listen address
	DefaultLogLevel       = "info"           // telemetry log level
	DefaultLogFormat      = "auto"           // telemetry log format
)

// Config is a decoded, validated micro.hcl with every default filled in.
type Config struct {
	// Filename is the file the config was read from (as given to Load or Parse).
	Filename string `json:"-"`
	// Variables are the declared variables with their resolved values, in file order.
	Variables []*Variable `json:"variables,omitempty"`
	// Services are the services the host runs, in file order.
	Services []*Service `json:"services"`
	// Registry is the service registry (default: the built-in memory registry).
	Registry Registry `json:"registry"`
	// Broker is the message broker (default: the built-in memory broker).
	Broker Broker `json:"broker"`
	// Transport is the RPC transport (default: the built-in http transport).
	Transport Transport `json:"transport"`
	// Codecs are the codecs services speak, the default first (default: json, msgpack).
	Codecs []*Codec `json:"codecs"`
	// Plugins are the out-of-process plugins to run, in file order.
	Plugins []*Plugin `json:"plugins,omitempty"`
	// Gateway is the API gateway; nil when micro.hcl has no gateway block.
	Gateway *Gateway `json:"gateway,omitempty"`
	// Security holds the security block; nil when there is none.
	Security *Security `json:"security,omitempty"`
	// Telemetry configures logs, metrics and tracing.
	Telemetry Telemetry `json:"telemetry"`

	// EvalContext is what expressions were evaluated with (var.*, env() and the
	// other functions), for decoders of bodies kept for later.
	EvalContext *hcl.EvalContext `json:"-"`
	// Warnings are problems that do not stop the host, such as a plugin block no
	// registry, broker, transport or codec uses.
	Warnings hcl.Diagnostics `json:"-"`
}

// Variable is a `variable "name" { default = ..., description = "..." }` block,
// referenced as var.name.
type Variable struct {
	// Name is the label; expressions refer to it as var.<Name>.
	Name string `json:"name"`
	// Description documents the variable.
	Description string `json:"description,omitempty"`
	// Value is the resolved value as JSON: the override if one was given, else the default.
	Value json.RawMessage `json:"value"`
	// Overridden reports that Value came from WithVars rather than the default.
	Overridden bool `json:"overridden,omitempty"`
	// Range is the block header, `variable "name"`.
	Range hcl.Range `json:"-"`
}

// Service is a `service "name" {...}` block: one service the host runs. With
// neither Package nor Binary the service is embedded: the program embedding the
// host SDK registers its handler in-process.
type Service struct {
	// Name is the label, the name the service registers under.
	Name string `json:"name"`
	// Version is the version it registers (default "latest").
	Version string `json:"version"`
	// Address is the listen address, host:port (default "127.0.0.1:0", any free port).
	Address string `json:"address"`
	// Advertise is the host:port other nodes reach it at; empty means the
	// address actually listened on.
	Advertise string `json:"advertise,omitempty"`
	// Package is a Go package `micro run` builds and runs as a child process.
	Package string `json:"package,omitempty"`
	// Binary is a prebuilt executable `micro run` runs as a child process.
	Binary string `json:"binary,omitempty"`
	// Args are passed to the child process (package or binary).
	Args []string `json:"args,omitempty"`
	// Env is added to the child process's environment.
	Env map[string]string `json:"env,omitempty"`
	// Metadata is registered with the service (free-form key/value pairs).
	Metadata map[string]string `json:"metadata,omitempty"`
	// TTL is how long a registration lives without a heartbeat (default 30s).
	TTL time.Duration `json:"ttl"`
	// DrainTimeout bounds how long in-flight calls may finish on shutdown (default 10s).
	DrainTimeout time.Duration `json:"drain_timeout"`

	// Range is the block header, `service "name"`.
	Range hcl.Range `json:"-"`
	// AddressRange is the address attribute, or Range when it is defaulted.
	AddressRange hcl.Range `json:"-"`
	// AdvertiseRange is the advertise attribute, or Range when it is absent.
	AdvertiseRange hcl.Range `json:"-"`
	// PackageRange is the package attribute, or Range when it is absent.
	PackageRange hcl.Range `json:"-"`
	// BinaryRange is the binary attribute, or Range when it is absent.
	BinaryRange hcl.Range `json:"-"`
}

// Embedded reports whether the service runs in-process (neither package nor binary).
func (s *Service) Embedded() bool { return s.Package == "" && s.Binary == "" }

// Registry is the `registry "name" {...}` block.
type Registry struct {
	// Name is the label: "memory" (built in) or the name of a registry plugin.
	Name string `json:"name"`
	// Plugin is the ID of the plugin that provides it ("registry-<name>"); empty
	// for the built-in.
	Plugin string `json:"plugin,omitempty"`
	// Selector picks a node per call: round_robin (default), random or least_outstanding.
	Selector string `json:"selector"`
	// Range is the block header, or the zero Range when defaulted.
	Range hcl.Range `json:"-"`
}

// Broker is the `broker "name" {}` block.
type Broker struct {
	// Name is the label: "memory" (built in) or the name of a broker plugin.
	Name string `json:"name"`
	// Plugin is the ID of the plugin that provides it; empty for the built-in.
	Plugin string `json:"plugin,omitempty"`
	// Range is the block header, or the zero Range when defaulted.
	Range hcl.Range `json:"-"`
}

// Transport is the `transport "name" {...}` block. HTTP2, MaxBody and Pool apply
// to the built-in http transport only; a plugin transport is configured in its
// plugin block and leaves them zero.
type Transport struct {
	// Name is the label: "http" (built in) or the name of a transport plugin.
	Name string `json:"name"`
	// Plugin is the ID of the plugin that provides it; empty for the built-in.
	Plugin string `json:"plugin,omitempty"`
	// HTTP2 makes calls use HTTP/2 (h2c in plain text); listeners accept both.
	HTTP2 bool `json:"http2"`
	// MaxBody bounds request and response bodies and stream frames, in bytes
	// (written "4MiB" or as a number of bytes; default 4 MiB).
	MaxBody int64 `json:"max_body"`
	// Pool bounds the connections kept per remote address.
	Pool Pool `json:"pool"`
	// Range is the block header, or the zero Range when defaulted.
	Range hcl.Range `json:"-"`
}

// Pool is the http transport's `pool {...}` block.
type Pool struct {
	// MaxOpen caps connections per address (default 256).
	MaxOpen int `json:"max_open"`
	// MaxIdle caps idle keep-alive connections per address (default 64).
	MaxIdle int `json:"max_idle"`
	// WaitTimeout bounds the wait for a free connection (default 5s).
	WaitTimeout time.Duration `json:"wait_timeout"`
	// IdleTimeout closes a keep-alive connection unused this long (default 90s).
	IdleTimeout time.Duration `json:"idle_timeout"`
}

// Codec is a `codec "name" {}` block; the first codec is the default one.
type Codec struct {
	// Name is the label: "json", "msgpack" (built in) or the name of a codec plugin.
	Name string `json:"name"`
	// Plugin is the ID of the plugin that provides it; empty for a built-in.
	Plugin string `json:"plugin,omitempty"`
	// Range is the block header, or the zero Range when defaulted.
	Range hcl.Range `json:"-"`
}

// Plugin is a `plugin "<kind>-<name>" {...}` block: an out-of-process plugin the
// host installs from micro.lock.hcl, starts and configures.
type Plugin struct {
	// ID is the label, "<kind>-<name>", e.g. "registry-consul".
	ID string `json:"id"`
	// Kind is registry, broker, transport or codec.
	Kind string `json:"kind"`
	// Name is the part after the kind, as used in registry "<name>" and the like.
	Name string `json:"name"`
	// Version must match the version micro.lock.hcl records (the host checks it).
	Version string `json:"version"`
	// Source is where `micro plugin install` gets it (informational).
	Source string `json:"source,omitempty"`
	// Procs is the plugin process's GOMAXPROCS; 0 leaves it to the host
	// (half of the host's, at least one).
	Procs int `json:"gomaxprocs,omitempty"`
	// Config is the config block as a JSON object, sent to the plugin's Configure
	// after the host has checked it against the schema Describe returned. A
	// nested block becomes an object, a repeated block an array of objects, and a
	// block's labels nest as keys: `server "a" { port = 1 }` is {"server":{"a":{"port":1}}}.
	Config json.RawMessage `json:"config"`

	// Range is the block header, `plugin "<kind>-<name>"`.
	Range hcl.Range `json:"-"`
	// VersionRange is the version attribute, or Range when it is missing.
	VersionRange hcl.Range `json:"-"`
	// ConfigRange is the config block's header, or Range when there is none.
	ConfigRange hcl.Range `json:"-"`

	// configRanges maps JSON pointers into Config ("/address", "/tls/ca") to the
	// attribute or block they came from.
	configRanges map[string]hcl.Range
}

// ConfigDiagnostic returns an error diagnostic pointing at the plugin's config
// block, for the host to report a rejection by the plugin's config schema at
// file:line:col.
func (p *Plugin) ConfigDiagnostic(summary, detail string) *hcl.Diagnostic {
	r := p.ConfigRange
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: &r}
}

// ConfigDiagnosticAt is ConfigDiagnostic pointing at the attribute or block a
// JSON pointer into Config names (as a JSON Schema validator reports an instance
// location, "/pool/max" or "pool/max"); see ConfigRangeAt.
func (p *Plugin) ConfigDiagnosticAt(pointer, summary, detail string) *hcl.Diagnostic {
	r := p.ConfigRangeAt(pointer)
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: &r}
}

// ConfigRangeAt returns the source range of the config value at a JSON pointer,
// or of its nearest enclosing value that has one, or ConfigRange.
func (p *Plugin) ConfigRangeAt(pointer string) hcl.Range {
	if pointer != "" && !strings.HasPrefix(pointer, "/") {
		pointer = "/" + pointer
	}
	for pointer != "" {
		if r, ok := p.configRanges[pointer]; ok {
			return r
		}
		pointer = pointer[:strings.LastIndexByte(pointer, '/')]
	}
	return p.ConfigRange
}

// Gateway is the `gateway {...}` block, decoded and validated in full: the
// gateway.Config the host runs, and where it came from.
type Gateway struct {
	gateway.Config
	// TLS serves the gateway over HTTPS with these files (reloaded when they
	// change); nil serves plain HTTP.
	TLS *tlsconfig.Files `json:"tls,omitempty"`
	// Range is the block header.
	Range hcl.Range `json:"-"`
	// ListenRange is the listen attribute, or Range when it is defaulted.
	ListenRange hcl.Range `json:"-"`
	// TLSRange is the tls block.
	TLSRange hcl.Range `json:"-"`
	// Targets are the endpoints the routes and aggregate parts call, in file
	// order, with where each is named: the host checks them against the
	// services it runs once they are ready.
	Targets []Target `json:"-"`

	tlsFiles map[string]hcl.Range // each TLS file setting → its value
}

// Target is an endpoint a gateway route or aggregate part calls.
type Target struct {
	// From names the caller: `route "GET /a"` or `part "user"`.
	From              string
	Service, Endpoint string
	// ServiceRange and EndpointRange are the attributes' values.
	ServiceRange, EndpointRange hcl.Range
}

// Check loads the gateway's TLS files as start-up does; a problem comes back
// at the attribute that names the file.
func (g *Gateway) Check() error {
	if g == nil || g.TLS == nil {
		return nil
	}
	if d := checkTLS(*g.TLS, g.tlsFiles, g.TLSRange); d != nil {
		return newError(hcl.Diagnostics{d})
	}
	return nil
}

// Service returns the service called name, or nil.
func (c *Config) Service(name string) *Service {
	for _, s := range c.Services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Plugin returns the plugin block labelled id ("<kind>-<name>"), or nil.
func (c *Config) Plugin(id string) *Plugin {
	for _, p := range c.Plugins {
		if p.ID == id {
			return p
		}
	}
	return nil
}
