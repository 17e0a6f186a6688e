package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/microhost/micro/sdk/codec"
	"github.com/microhost/micro/sdk/registry"
)

// mustParse parses src as t.hcl with no environment but env.
func mustParse(t *testing.T, src string, opts ...Option) *Config {
	t.Helper()
	cfg, err := Parse([]byte(src), "t.hcl", append([]Option{WithEnv(mapEnv(nil))}, opts...)...)
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	return cfg
}

// parseErr parses src as t.hcl and returns its error text.
func parseErr(t *testing.T, src string, opts ...Option) string {
	t.Helper()
	cfg, err := Parse([]byte(src), "t.hcl", append([]Option{WithEnv(mapEnv(nil))}, opts...)...)
	if err == nil {
		t.Fatalf("Parse succeeded, want an error: %+v", cfg)
	}
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("error %T is not a *Error", err)
	}
	return err.Error()
}

func mapEnv(m map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

func TestLoad(t *testing.T) {
	path := filepath.Join("testdata", "good", "full.hcl")
	cfg, err := Load(path, WithEnv(lookupTestEnv))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Filename != path || cfg.Services[0].Range.Filename != path {
		t.Errorf("Filename = %q, range file %q; want %q", cfg.Filename, cfg.Services[0].Range.Filename, path)
	}

	_, err = Load(filepath.Join(t.TempDir(), FileName))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want fs.ErrNotExist", err)
	}

	bad := filepath.Join("testdata", "bad", "services.hcl")
	_, err = Load(bad)
	var cerr *Error
	if !errors.As(err, &cerr) || !strings.HasPrefix(err.Error(), bad+":2:9: Empty service name") {
		t.Errorf("Load(bad) = %v, want an *Error positioned in %s", err, bad)
	}
}

func TestEnv(t *testing.T) {
	env := map[string]string{"SET": "value", "EMPTY": ""}
	tests := []struct {
		name, expr, want, err string
	}{
		{name: "set", expr: `env("SET")`, want: "value"},
		{name: "set with default", expr: `env("SET", "d")`, want: "value"},
		{name: "set to empty", expr: `env("EMPTY", "d")`, want: ""},
		{name: "unset with default", expr: `env("UNSET", "d")`, want: "d"},
		{name: "inside format", expr: `format("%s/%s", env("SET"), env("UNSET", "x"))`, want: "value/x"},
		{name: "unset", expr: `env("UNSET")`,
			err: `t.hcl:1:32: Environment variable "UNSET" is not set; expected UNSET in the environment, or a default: env("UNSET", "fallback")`},
		{name: "empty name", expr: `env("")`,
			err: `t.hcl:1:38: Invalid function argument; Invalid value for "name" parameter: expected the name of an environment variable, got an empty string.`},
		{name: "no name", expr: `env()`,
			err: `t.hcl:1:36: Not enough function arguments; Function "env" expects at least 1 argument(s). Missing value for "name".`},
		{name: "name from an unset variable", expr: `env(var.required)`, err: `t.hcl:2:1: Variable "required" has no value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := `service "s" { metadata = { v = ` + tt.expr + ` } }`
			if strings.Contains(tt.expr, "var.required") {
				src += "\n" + `variable "required" {}`
			}
			cfg, err := Parse([]byte(src), "t.hcl", WithEnv(mapEnv(env)))
			if tt.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.err) || strings.Count(err.Error(), "\n") != 0 {
					t.Fatalf("err = %v\nwant exactly one diagnostic starting %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Services[0].Metadata["v"]; got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestEnvDefaultsToOS checks that without WithEnv, env() reads the process environment.
func TestEnvDefaultsToOS(t *testing.T) {
	t.Setenv("MICRO_CONFIG_TEST_ENV", "from-os")
	src := []byte(`service "s" { metadata = { v = env("MICRO_CONFIG_TEST_ENV") } }`)
	for _, opts := range [][]Option{nil, {WithEnv(nil)}} {
		cfg, err := Parse(src, "t.hcl", opts...)
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Services[0].Metadata["v"]; got != "from-os" {
			t.Errorf("env() = %q, want from-os", got)
		}
	}
}

func TestVariables(t *testing.T) {
	const decls = `
variable "s" { default = "default" }
variable "n" { default = 1 }
variable "b" { default = true }
variable "list" { default = ["a", "b"] }
variable "req" {}
`
	tests := []struct {
		name string
		vars []map[string]string
		use  string
		want string // the metadata value v, or the error
		err  bool
	}{
		{name: "default", vars: []map[string]string{{"req": "r"}}, use: `var.s`, want: "default"},
		{name: "override string", vars: []map[string]string{{"req": "r", "s": "over"}}, use: `var.s`, want: "over"},
		{name: "override number", vars: []map[string]string{{"req": "r", "n": "42"}}, use: `format("%d", var.n + 1)`, want: "43"},
		{name: "override bool", vars: []map[string]string{{"req": "r", "b": "false"}}, use: `format("%t", !var.b)`, want: "true"},
		{name: "override a list default with a string", vars: []map[string]string{{"req": "r", "list": "x"}}, use: `var.list`, want: "x"},
		{name: "list default", vars: []map[string]string{{"req": "r"}}, use: `join("+", var.list)`, want: "a+b"},
		{name: "required given", vars: []map[string]string{{"req": "given"}}, use: `var.req`, want: "given"},
		{name: "later WithVars wins", vars: []map[string]string{{"req": "one"}, {"req": "two"}}, use: `var.req`, want: "two"},
		{name: "for expression", vars: []map[string]string{{"req": "r"}}, use: `join(",", [for s in var.list : upper(s)])`, want: "A,B"},
		{name: "index syntax", vars: []map[string]string{{"req": "r"}}, use: `var["s"]`, want: "default"},
		{name: "required missing", use: `"x"`, err: true,
			want: `t.hcl:6:1: Variable "req" has no value; expected a default in its block, such as default = "value", or a value for "req" given as an override`},
		{name: "bad number", vars: []map[string]string{{"req": "r", "n": "one"}}, use: `"x"`, err: true,
			want: `t.hcl:3:1: Invalid override for variable "n"; expected a number like its default, got "one"`},
		{name: "bad bool", vars: []map[string]string{{"req": "r", "b": "yes"}}, use: `"x"`, err: true,
			want: `t.hcl:4:1: Invalid override for variable "b"; expected a bool like its default, got "yes"`},
		{name: "undeclared override", vars: []map[string]string{{"req": "r", "zz": "1", "aa": "2"}}, use: `"x"`, err: true,
			want: "t.hcl: Override for undeclared variable \"aa\"; expected one of: s, n, b, list, req; or declare it: variable \"aa\" { default = ... }\n" +
				`t.hcl: Override for undeclared variable "zz"; expected one of: s, n, b, list, req; or declare it: variable "zz" { default = ... }`},
		{name: "undeclared reference", vars: []map[string]string{{"req": "r"}}, use: `var.nope`, err: true,
			want: `t.hcl:7:32: Undeclared variable "nope"; expected one of: var.s, var.n, var.b, var.list, var.req; or a block declaring it: variable "nope" { default = ... }`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := decls + `service "s" { metadata = { v = ` + tt.use + ` } }`
			var opts []Option
			for _, v := range tt.vars {
				opts = append(opts, WithVars(v))
			}
			if tt.err {
				if got := parseErr(t, src, opts...); got != tt.want {
					t.Errorf("error:\n%s\nwant:\n%s", got, tt.want)
				}
				return
			}
			cfg := mustParse(t, src, opts...)
			if got := cfg.Services[0].Metadata["v"]; got != tt.want {
				t.Errorf("v = %q, want %q", got, tt.want)
			}
		})
	}

	// No variables declared at all.
	got := parseErr(t, `service "s" { metadata = { v = var.x } }`, WithVars(map[string]string{"y": "1"}))
	want := `t.hcl:1:32: Undeclared variable "x"; expected a block declaring it: variable "x" { default = ... }` + "\n" +
		`t.hcl: Override for undeclared variable "y"; this file declares no variables; or declare it: variable "y" { default = ... }`
	if got != want {
		t.Errorf("error:\n%s\nwant:\n%s", got, want)
	}
}

// TestWithVarsCopies checks the map passed to WithVars is not kept.
func TestWithVarsCopies(t *testing.T) {
	vars := map[string]string{"v": "before"}
	opt := WithVars(vars)
	vars["v"] = "after"
	cfg := mustParse(t, `variable "v" {}`+"\n"+`service "s" { version = var.v }`, opt)
	if cfg.Services[0].Version != "before" {
		t.Errorf("version = %q, want before", cfg.Services[0].Version)
	}
}

func TestRanges(t *testing.T) {
	cfg, err := parseTestdata(t, "good/full.hcl")
	if err != nil {
		t.Fatal(err)
	}
	pos := func(r hcl.Range) string { return posString(r) }
	greeter, audit := cfg.Service("greeter"), cfg.Service("audit")
	checks := []struct {
		what string
		got  hcl.Range
		want string
	}{
		{"service range", greeter.Range, "full.hcl:7:1"},
		{"address", greeter.AddressRange, "full.hcl:9:3"},
		{"advertise", greeter.AdvertiseRange, "full.hcl:10:3"},
		{"package", greeter.PackageRange, "full.hcl:11:3"},
		{"binary absent", greeter.BinaryRange, "full.hcl:7:1"},
		{"defaulted address", audit.AddressRange, "full.hcl:26:1"},
		{"registry", cfg.Registry.Range, "full.hcl:28:1"},
		{"broker", cfg.Broker.Range, "full.hcl:32:1"},
		{"transport", cfg.Transport.Range, "full.hcl:34:1"},
		{"codec", cfg.Codecs[1].Range, "full.hcl:47:1"},
		{"plugin", cfg.Plugins[0].Range, "full.hcl:49:1"},
		{"plugin version", cfg.Plugins[0].VersionRange, "full.hcl:50:3"},
		{"plugin config", cfg.Plugins[0].ConfigRange, "full.hcl:52:3"},
		{"gateway", cfg.Gateway.Range, "full.hcl:58:1"},
		{"gateway listen", cfg.Gateway.ListenRange, "full.hcl:59:3"},
		{"security", cfg.Security.Range, "full.hcl:135:1"},
		{"telemetry", cfg.Telemetry.Range, "full.hcl:142:1"},
		{"jwks", cfg.Security.JWKSRange, "full.hcl:138:5"},
		{"tls absent", cfg.Security.TLSRange, "full.hcl:135:1"},
		{"variable", cfg.Variables[0].Range, "full.hcl:2:1"},
	}
	for _, c := range checks {
		if got := pos(c.got); got != c.want {
			t.Errorf("%s at %s, want %s", c.what, got, c.want)
		}
	}

	// Defaulted components have no range.
	empty := mustParse(t, "")
	if empty.Registry.Range != (hcl.Range{}) || empty.Codecs[0].Range != (hcl.Range{}) {
		t.Error("defaulted components should have the zero Range")
	}
}

func TestPluginConfigDiagnostic(t *testing.T) {
	cfg, err := parseTestdata(t, "good/plugins.hcl")
	if err != nil {
		t.Fatal(err)
	}
	nats := cfg.Plugin("broker-nats")
	if nats == nil {
		t.Fatal("no broker-nats plugin")
	}
	d := nats.ConfigDiagnostic("Plugin broker-nats rejected its config", `expected "servers" to be a list of URLs`)
	if got, want := FormatDiagnostic(d), `plugins.hcl:15:3: Plugin broker-nats rejected its config; expected "servers" to be a list of URLs`; got != want {
		t.Errorf("ConfigDiagnostic:\n%s\nwant\n%s", got, want)
	}
	if d.Severity != hcl.DiagError {
		t.Error("ConfigDiagnostic is not an error")
	}
	at := []struct{ pointer, want string }{
		{"", "plugins.hcl:15:3"},
		{"/", "plugins.hcl:15:3"},
		{"/servers", "plugins.hcl:16:5"},
		{"servers", "plugins.hcl:16:5"},
		{"/servers/1", "plugins.hcl:16:5"},
		{"/retries", "plugins.hcl:18:5"},
		{"/tls", "plugins.hcl:23:5"},
		{"/tls/ca", "plugins.hcl:24:7"},
		{"/stream/orders", "plugins.hcl:27:12"},
		{"/stream/audit/subjects/0", "plugins.hcl:31:7"},
		{"/consumer", "plugins.hcl:33:5"},
		{"/consumer/1", "plugins.hcl:36:5"},
		{"/consumer/1/name", "plugins.hcl:37:7"},
		{"/nothing/here", "plugins.hcl:15:3"},
	}
	for _, a := range at {
		if got := posString(nats.ConfigRangeAt(a.pointer)); got != a.want {
			t.Errorf("ConfigRangeAt(%q) = %s, want %s", a.pointer, got, a.want)
		}
	}
	d = nats.ConfigDiagnosticAt("/tls/ca", "Bad CA", "expected a PEM file")
	if got, want := FormatDiagnostic(d), "plugins.hcl:24:7: Bad CA; expected a PEM file"; got != want {
		t.Errorf("ConfigDiagnosticAt = %s, want %s", got, want)
	}
	// A plugin without a config block points at the plugin block.
	grpc := cfg.Plugin("transport-grpc")
	if got := posString(*grpc.ConfigDiagnostic("s", "d").Subject); got != "plugins.hcl:42:1" {
		t.Errorf("no config block: diagnostic at %s, want the plugin block", got)
	}
	if got := posString(grpc.ConfigRangeAt("/x")); got != "plugins.hcl:42:1" {
		t.Errorf("no config block: ConfigRangeAt at %s", got)
	}
	if string(grpc.Config) != "{}" {
		t.Errorf("no config block: Config = %s, want {}", grpc.Config)
	}
}

func TestPluginConfigJSON(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"empty", ``, `{}`},
		{"scalars", `s = "x"` + "\n" + `n = 1.25` + "\n" + `i = 9007199254740993` + "\n" + `b = false` + "\n" + `z = null`,
			`{"b":false,"i":9007199254740993,"n":1.25,"s":"x","z":null}`},
		{"collections", `l = [1, "a", true]` + "\n" + `m = { k = ["v"], "a/b" = {} }`,
			`{"l":[1,"a",true],"m":{"a/b":{},"k":["v"]}}`},
		{"html characters kept", `s = "<a> & b>"`, `{"s":"<a> & b>"}`},
		{"block", "tls {\n ca = \"x\"\n}", `{"tls":{"ca":"x"}}`},
		{"labels nest", "server \"a\" \"b\" {\n port = 1\n}\nserver \"a\" \"c\" {}", `{"server":{"a":{"b":{"port":1},"c":{}}}}`},
		{"repeated blocks", "peer {\n n = 1\n}\npeer {\n n = 2\n}\npeer {}", `{"peer":[{"n":1},{"n":2},{}]}`},
		{"repeated labelled blocks", "rule \"x\" {\n n = 1\n}\nrule \"x\" {\n n = 2\n}", `{"rule":{"x":[{"n":1},{"n":2}]}}`},
		{"deep", "a {\n b {\n c {\n d = env(\"D\", \"dv\")\n }\n }\n}", `{"a":{"b":{"c":{"d":"dv"}}}}`},
		{"functions and vars", `v = upper(var.x)`, `{"v":"X"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "variable \"x\" { default = \"x\" }\nregistry \"r\" {}\nplugin \"registry-r\" {\n version = \"1.0.0\"\n config {\n" + tt.body + "\n }\n}\n"
			cfg := mustParse(t, src)
			if got := string(cfg.Plugins[0].Config); got != tt.want {
				t.Errorf("config = %s\nwant     %s", got, tt.want)
			}
			if !json.Valid(cfg.Plugins[0].Config) {
				t.Error("config is not valid JSON")
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	cfg := mustParse(t, `
plugin "registry-consul" { version = "1.0.0" }
plugin "codec-cbor" { version = "1.0.0" }
plugin "codec-protobuf" { version = "1.0.0" }
codec "protobuf" {}
`)
	var got []string
	for _, w := range cfg.Warnings {
		got = append(got, FormatDiagnostic(w))
	}
	want := []string{
		`t.hcl:2:1: warning: Unused plugin "registry-consul"; no registry block names "consul", so the plugin will not be used; expected registry "consul" { ... } to use it, or remove the plugin block`,
		`t.hcl:3:1: warning: Unused plugin "codec-cbor"; no codec block names "cbor", so the plugin will not be used; expected codec "cbor" { ... } to use it, or remove the plugin block`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if cfg, err := parseTestdata(t, "good/full.hcl"); err != nil || len(cfg.Warnings) != 0 {
		t.Errorf("full.hcl: err %v, warnings %v", err, cfg.Warnings)
	}
}

// TestWarnUnknownGatewayService warns about a gateway route or aggregate part
// naming a service no block declares while the registry is the built-in memory
// one, which holds only the services this host runs; a {param} service or a
// plugin registry (services run elsewhere) is not warned about.
func TestWarnUnknownGatewayService(t *testing.T) {
	const gateway = `
gateway {
  route "GET /a" {
    service  = "greter"
    endpoint = "Greeter.Hello"
  }
  route "POST /rpc/{service}/{endpoint}" {
    service  = "{service}"
    endpoint = "{endpoint}"
  }
  aggregate "GET /both" {
    part "one" {
      service  = "greeter"
      endpoint = "Greeter.Hello"
    }
    part "two" {
      service  = "billing"
      endpoint = "Billing.Get"
    }
  }
}
`
	cfg := mustParse(t, "service \"greeter\" {}\n"+gateway)
	var got []string
	for _, w := range cfg.Warnings {
		got = append(got, FormatDiagnostic(w))
	}
	want := []string{
		`t.hcl:5:16: warning: Unknown service "greter"; route "GET /a" calls service "greter", which no service block declares, and the memory registry holds only the services this host runs; expected one of: greeter (or add a service "greter" block)`,
		`t.hcl:18:18: warning: Unknown service "billing"; part "two" calls service "billing", which no service block declares, and the memory registry holds only the services this host runs; expected one of: greeter (or add a service "billing" block)`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	cfg = mustParse(t, "service \"greeter\" {}\nregistry \"consul\" {}\nplugin \"registry-consul\" { version = \"1.0.0\" }\n"+gateway)
	if len(cfg.Warnings) != 0 {
		t.Errorf("with a plugin registry: warnings %v", cfg.Warnings)
	}
}

func TestParseSize(t *testing.T) {
	good := map[string]int64{
		"0": 0, "1": 1, "100B": 100, "100 b": 100, "4MiB": 4 << 20, "4mib": 4 << 20, "512KiB": 512 << 10,
		"1.5KiB": 1536, "2GiB": 2 << 30, "1TiB": 1 << 40, "1KB": 1000, "1.5MB": 1500000, "3GB": 3e9, "2TB": 2e12,
		" 8 MiB ": 8 << 20, "0.5GiB": 1 << 29,
	}
	for in, want := range good {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "4 furlongs", "-1", "1.1B", "1.2.3KiB", "4M", "4 Mi B", "1e3", "99999999TiB", "0x10", "1/2KiB"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestSizesAndDurations(t *testing.T) {
	cfg := mustParse(t, `
transport "http" {
  max_body = "1.5 KiB"
  pool {
    wait_timeout = "1m30s"
    idle_timeout = "1h"
  }
}
service "s" {
  ttl = "500ms"
  drain_timeout = "0s"
}`)
	if cfg.Transport.MaxBody != 1536 || cfg.Transport.Pool.WaitTimeout != 90*time.Second ||
		cfg.Transport.Pool.IdleTimeout != time.Hour || cfg.Services[0].TTL != 500*time.Millisecond || cfg.Services[0].DrainTimeout != 0 {
		t.Errorf("got transport %+v, service %+v", cfg.Transport, cfg.Services[0])
	}
	got := parseErr(t, `transport "http" {
  max_body = 0
  pool {
    max_open = 4
    max_idle = 8
  }
}`)
	want := `t.hcl:2:14: Invalid size for "max_body"; expected a positive size such as "4MiB", "512KiB" or a whole number of bytes, got 0` + "\n" +
		`t.hcl:5:16: Invalid value for "max_idle"; expected at most max_open (4), got 8`
	if got != want {
		t.Errorf("error:\n%s\nwant:\n%s", got, want)
	}
	for _, bad := range []string{`1.5`, `"1.1MiB"`, `-1`, `true`, `["1"]`, `"99999999TiB"`} {
		if msg := parseErr(t, "transport \"http\" {\n  max_body = "+bad+"\n}"); !strings.HasPrefix(msg, `t.hcl:2:14: Invalid size for "max_body"`) {
			t.Errorf("max_body = %s: %s", bad, msg)
		}
	}
}

func TestValidAddress(t *testing.T) {
	tests := []struct {
		addr              string
		listen, advertise bool
	}{
		{"127.0.0.1:8080", true, true},
		{":8080", true, false},
		{"127.0.0.1:0", true, false},
		{":0", true, false},
		{"[::1]:80", true, true},
		{"[::]:0", true, false},
		{"example.com:443", true, true},
		{"localhost", false, false},
		{"127.0.0.1:", false, false},
		{"127.0.0.1:99999", false, false},
		{"127.0.0.1:http", false, false},
		{"127.0.0.1:-1", false, false},
		{"127.0.0.1:+80", false, false},
		{"::1:80", false, false},
		{"a b:80", false, false},
		{"", false, false},
	}
	for _, tt := range tests {
		if got := validAddress(tt.addr, listenAddr); got != tt.listen {
			t.Errorf("validAddress(%q, listen) = %v, want %v", tt.addr, got, tt.listen)
		}
		if got := validAddress(tt.addr, advertiseAddr); got != tt.advertise {
			t.Errorf("validAddress(%q, advertise) = %v, want %v", tt.addr, got, tt.advertise)
		}
	}
}

// TestBuiltinsMatchSDK keeps this package's names in step with the sdk's.
func TestBuiltinsMatchSDK(t *testing.T) {
	// sdk/plugin.Kinds, written out: importing sdk/plugin here would tie these
	// tests to gRPC and the plugin protocol.
	if want := []string{"registry", "broker", "transport", "codec"}; !reflect.DeepEqual(pluginKinds, want) {
		t.Errorf("plugin kinds %v, want %v", pluginKinds, want)
	}
	if !reflect.DeepEqual(builtinCodecs, codec.BuiltinNames()) {
		t.Errorf("codecs %v, sdk %v", builtinCodecs, codec.BuiltinNames())
	}
	for _, name := range selectorNames {
		if _, err := registry.SelectorByName(name); err != nil {
			t.Errorf("selector %q: %v", name, err)
		}
	}
	if registry.NewMemory().Name() != builtinRegistries[0] {
		t.Errorf("built-in registry %q", builtinRegistries[0])
	}
}

// TestRemainBodies decodes the bodies kept for later with Config.EvalContext, as
// the telemetry decoders will; the gateway and security blocks are decoded with
// the same variables and functions.
func TestRemainBodies(t *testing.T) {
	cfg := mustParse(t, `
variable "svc" { default = "greeter" }
gateway {
  listen = "127.0.0.1:9000"
  route "/greet" {
    service  = var.svc
    endpoint = "Greeter.Hello"
    timeout  = env("TIMEOUT", "2s")
  }
}
security {
  jwt {
    issuer = upper("me")
    key { secret = env("SECRET", "0123456789abcdef0123456789abcdef") }
  }
}
telemetry {
  metrics { listen = ":9100" }
  tracing { endpoint = "otel:4317" }
}
`)
	if r := cfg.Gateway.Routes; len(r) != 1 || r[0].Service != "greeter" || r[0].Timeout != 2*time.Second {
		t.Errorf("gateway routes = %+v", r)
	}
	if cfg.Gateway.Listen != "127.0.0.1:9000" {
		t.Errorf("listen = %q", cfg.Gateway.Listen)
	}
	if j := cfg.Security.JWT; j == nil || j.Issuer != "ME" || len(j.Keys) != 1 || j.Keys[0].Secret != "0123456789abcdef0123456789abcdef" {
		t.Errorf("security jwt: %+v", j)
	}
	if cfg.Telemetry.Metrics.Listen != ":9100" || cfg.Telemetry.Tracing == nil || cfg.Telemetry.Tracing.Endpoint != "otel:4317" {
		t.Errorf("telemetry = %+v", cfg.Telemetry)
	}
	// A gateway block without listen gets the default.
	if g := mustParse(t, "gateway {}").Gateway; g == nil || g.Listen != DefaultGatewayListen {
		t.Errorf("default gateway = %+v", g)
	}
}

func TestFormatDiagnostic(t *testing.T) {
	r := hcl.Range{Filename: "f.hcl", Start: hcl.Pos{Line: 3, Column: 7}}
	tests := []struct {
		d    *hcl.Diagnostic
		want string
	}{
		{&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "S", Detail: "D", Subject: &r}, "f.hcl:3:7: S; D"},
		{&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "S", Subject: &r}, "f.hcl:3:7: S"},
		{&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "S", Detail: "line one\nline two"}, "S; line one line two"},
		{&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "S", Detail: "D", Subject: &hcl.Range{Filename: "f.hcl"}}, "f.hcl: S; D"},
		{&hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "S", Detail: "D", Subject: &r}, "f.hcl:3:7: warning: S; D"},
	}
	for _, tt := range tests {
		if got := FormatDiagnostic(tt.d); got != tt.want {
			t.Errorf("FormatDiagnostic = %q, want %q", got, tt.want)
		}
	}
	e := &Error{Diagnostics: hcl.Diagnostics{tests[0].d, tests[1].d}}
	if got := e.Error(); got != "f.hcl:3:7: S; D\nf.hcl:3:7: S" {
		t.Errorf("Error() = %q", got)
	}
}

// TestSortedByPosition checks diagnostics come out in file order whatever order
// the checks ran in.
func TestSortedByPosition(t *testing.T) {
	cfg, err := parseTestdata(t, "bad/unknown.hcl")
	if cfg != nil || err == nil {
		t.Fatal("want an error")
	}
	var cerr *Error
	errors.As(err, &cerr)
	for i := 1; i < len(cerr.Diagnostics); i++ {
		a, b := cerr.Diagnostics[i-1].Subject.Start, cerr.Diagnostics[i].Subject.Start
		if a.Line > b.Line || a.Line == b.Line && a.Column > b.Column {
			t.Errorf("diagnostic %d (%d:%d) before %d:%d", i, a.Line, a.Column, b.Line, b.Column)
		}
	}
}

// TestParseIsDeterministic parses the bad files repeatedly: map iteration in
// the decoder must not change the output.
func TestParseIsDeterministic(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*", "*.hcl"))
	for _, file := range files {
		rel, _ := filepath.Rel("testdata", file)
		_, first := parseTestdata(t, rel)
		for range 5 {
			if _, err := parseTestdata(t, rel); errString(err) != errString(first) {
				t.Fatalf("%s: output changed between runs:\n%v\nvs\n%v", file, err, first)
			}
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestWarnClientCAWithoutCA warns that client_ca_file alone leaves the
// services' calls to each other verifying servers against the system's roots.
func TestWarnClientCAWithoutCA(t *testing.T) {
	const block = `security {
  tls {
    cert_file      = "tls.crt"
    key_file       = "tls.key"
    client_ca_file = "clients.crt"
%s  }
}
`
	cfg := mustParse(t, fmt.Sprintf(block, ""))
	var got []string
	for _, w := range cfg.Warnings {
		got = append(got, FormatDiagnostic(w))
	}
	want := `t.hcl:5:22: warning: client_ca_file without ca_file; client_ca_file only admits callers: the services' calls to each other verify server certificates against the system's trusted roots, so certificates from your own CA are refused; expected ca_file = "ca.crt" naming the CA that issued the services' certificates`
	if len(got) != 1 || got[0] != want {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), want)
	}
	cfg = mustParse(t, fmt.Sprintf(block, "    ca_file        = \"ca.crt\"\n"))
	if len(cfg.Warnings) != 0 {
		t.Errorf("with ca_file: warnings %v", cfg.Warnings)
	}
}
