package config

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// The schemas of micro.hcl's blocks.
var (
	rootSchema = bodySchema{blocks: []blockSpec{
		{typ: "variable", label: "name"},
		{typ: "service", label: "name"},
		{typ: "registry", label: "name"},
		{typ: "broker", label: "name"},
		{typ: "transport", label: "name"},
		{typ: "codec", label: "name"},
		{typ: "plugin", label: "kind-name"},
		{typ: "gateway"},
		{typ: "security"},
		{typ: "telemetry"},
	}}
	variableSchema = bodySchema{attrs: []string{"default", "description"}}
	serviceSchema  = bodySchema{attrs: []string{
		"version", "address", "advertise", "package", "binary", "args", "env", "metadata", "ttl", "drain_timeout",
	}}
	registrySchema  = bodySchema{attrs: []string{"selector"}}
	brokerSchema    = bodySchema{}
	transportSchema = bodySchema{attrs: []string{"http2", "max_body"}, blocks: []blockSpec{{typ: "pool"}}}
	poolSchema      = bodySchema{attrs: []string{"max_open", "max_idle", "wait_timeout", "idle_timeout"}}
	codecSchema     = bodySchema{}
	pluginSchema    = bodySchema{attrs: []string{"version", "source", "gomaxprocs"}, blocks: []blockSpec{{typ: "config"}}}
)

// decodeFile decodes the root body.
func (d *decoder) decodeFile(body *hclsyntax.Body) *Config {
	cfg := &Config{Filename: d.file}
	_, blocks := d.content(body, rootSchema)
	all := byType(blocks)

	cfg.Variables = d.decodeVariables(all["variable"])
	plugins := d.decodePlugins(all["plugin"])
	cfg.Plugins = plugins.list
	cfg.Services = d.decodeServices(all["service"])
	cfg.Registry = d.decodeRegistry(d.single(all["registry"]), plugins)
	cfg.Broker = d.decodeBroker(d.single(all["broker"]), plugins)
	cfg.Transport = d.decodeTransport(d.single(all["transport"]), plugins)
	cfg.Codecs = d.decodeCodecs(all["codec"], plugins)
	cfg.Security = d.decodeSecurity(d.single(all["security"]), cfg.Transport)
	cfg.Gateway = d.decodeGateway(d.single(all["gateway"]), cfg.Security)
	cfg.Telemetry = d.decodeTelemetry(d.single(all["telemetry"]))
	d.warnUnused(plugins)
	d.warnUnknownServices(cfg)
	return cfg
}

// warnUnknownServices warns about gateway routes and parts calling a service no
// block declares while the registry is the built-in one: it holds only the
// services this host runs, so such a call could never be answered. A plugin
// registry may hold services run elsewhere; a {param} name is known per request.
func (d *decoder) warnUnknownServices(cfg *Config) {
	if cfg.Registry.Plugin != "" {
		return
	}
	var names []string
	for _, s := range cfg.Services {
		names = append(names, s.Name)
	}
	expected := "this file declares no services"
	if len(names) > 0 {
		expected = "expected one of: " + quoteList(names)
	}
	for _, t := range d.targets {
		if strings.Contains(t.Service, "{") || slices.Contains(names, t.Service) {
			continue
		}
		d.warnf(t.ServiceRange, fmt.Sprintf("Unknown service %q", t.Service),
			"%s calls service %q, which no service block declares, and the %s registry holds only the services this host runs; %s (or add a service %q block)",
			t.From, t.Service, cfg.Registry.Name, expected, t.Service)
	}
}

// decodeVariables decodes the variable blocks, applies the overrides, and makes
// var.<name> available to every later expression.
func (d *decoder) decodeVariables(blocks []*hclsyntax.Block) []*Variable {
	d.inVariables = true
	defer func() { d.inVariables = false }()
	var out []*Variable
	seen := map[string]hcl.Range{}
	for _, b := range blocks {
		attrs, _ := d.content(b.Body, variableSchema)
		name := label(b)
		if !hclsyntax.ValidIdentifier(name) {
			d.errorf(b.LabelRanges[0], fmt.Sprintf("Invalid variable name %q", name),
				`expected a name of letters, digits, "_" and "-" starting with a letter, such as "zone"`)
			continue
		}
		if prev, dup := seen[name]; dup {
			d.errorf(b.LabelRanges[0], fmt.Sprintf("Duplicate variable %q", name),
				"variable %q is already declared at %s; expected each variable once", name, posString(prev))
			continue
		}
		seen[name] = b.DefRange()
		v := &Variable{Name: name, Range: b.DefRange()}
		if a := attrs["description"]; a != nil {
			v.Description, _ = d.str(a)
		}
		// val stays unknown when there is no value, so uses of it report nothing more.
		val, hasDefault := cty.DynamicVal, false
		if a := attrs["default"]; a != nil {
			dv, ok := d.eval(a.Expr)
			switch {
			case !ok: // reported already: do not also say it has no value
				hasDefault = true
			case !dv.IsNull(): // default = null means no default
				val, hasDefault = dv, true
			}
		}
		if s, ok := d.opts.vars[name]; ok {
			val = d.override(b, name, s, val)
			v.Overridden = true
		} else if !hasDefault {
			d.errorf(b.DefRange(), fmt.Sprintf("Variable %q has no value", name),
				"expected a default in its block, such as default = \"value\", or a value for %q given as an override", name)
		}
		if val.IsWhollyKnown() {
			if raw, err := ctyjson.Marshal(val, val.Type()); err == nil {
				v.Value, _ = plainJSON(raw)
			}
		}
		if v.Value == nil {
			v.Value = json.RawMessage("null")
		}
		d.vars[name] = val
		d.varOrder = append(d.varOrder, name)
		out = append(out, v)
	}
	var undeclared []string
	for name := range d.opts.vars {
		if _, ok := d.vars[name]; !ok {
			undeclared = append(undeclared, name)
		}
	}
	sort.Strings(undeclared)
	for _, name := range undeclared {
		expected := "this file declares no variables"
		if len(d.varOrder) > 0 {
			expected = "expected one of: " + quoteList(d.varOrder)
		}
		d.errorf(hcl.Range{Filename: d.file}, fmt.Sprintf("Override for undeclared variable %q", name),
			"%s; or declare it: variable %q { default = ... }", expected, name)
	}
	d.ctx.Variables = map[string]cty.Value{"var": cty.ObjectVal(d.vars)}
	return out
}

// override converts an override to the type of the variable's default when that
// is a number or a bool; otherwise it is a string.
func (d *decoder) override(b *hclsyntax.Block, name, s string, def cty.Value) cty.Value {
	val := cty.StringVal(s)
	if !def.IsKnown() || def.IsNull() {
		return val
	}
	ty := def.Type()
	if ty != cty.Number && ty != cty.Bool {
		return val
	}
	c, err := convert.Convert(val, ty)
	if err != nil {
		d.errorf(b.DefRange(), fmt.Sprintf("Invalid override for variable %q", name),
			"expected %s like its default, got %q", typeDesc(def), s)
		return cty.DynamicVal
	}
	return c
}

// pluginSet is the decoded plugin blocks.
type pluginSet struct {
	list  []*Plugin
	known map[string]bool // every well-labelled ID, valid or not, to avoid cascading errors
	used  map[string]bool
}

// decodePlugins decodes the plugin blocks.
func (d *decoder) decodePlugins(blocks []*hclsyntax.Block) *pluginSet {
	ps := &pluginSet{known: map[string]bool{}, used: map[string]bool{}}
	seen := map[string]hcl.Range{}
	for _, b := range blocks {
		attrs, inner := d.content(b.Body, pluginSchema)
		id := label(b)
		lr := b.LabelRanges[0]
		kind, name, _ := strings.Cut(id, "-")
		if !isOneOf(kind, pluginKinds) || !pluginNameRE.MatchString(name) {
			d.errorf(lr, fmt.Sprintf("Invalid plugin label %q", id),
				`expected "<kind>-<name>" with kind one of: %s and a name of lower-case letters, digits, "_" and "-", such as %s`,
				quoteList(pluginKinds), `"registry-consul"`)
			if isOneOf(kind, pluginKinds) {
				ps.known[id] = true
			}
			continue
		}
		ps.known[id] = true
		if prev, dup := seen[id]; dup {
			d.errorf(lr, fmt.Sprintf("Duplicate plugin %q", id),
				"plugin %q is already configured at %s; expected each plugin once", id, posString(prev))
			continue
		}
		seen[id] = b.DefRange()
		p := &Plugin{ID: id, Kind: kind, Name: name, Range: b.DefRange(), VersionRange: b.DefRange(), ConfigRange: b.DefRange()}
		if a := attrs["version"]; a != nil {
			p.VersionRange = a.SrcRange
			if v, ok := d.str(a); ok {
				if pluginVersionRE.MatchString(v) {
					p.Version = v
				} else {
					d.errorf(a.Expr.Range(), `Invalid value for "version"`,
						`expected a version as micro.lock.hcl records it, such as "1.2.0", got %q`, v)
				}
			}
		} else {
			d.errorf(lr, fmt.Sprintf("Missing version for plugin %q", id),
				`expected version = "<version>" in the block, the version micro.lock.hcl records (see micro plugin list)`)
		}
		if a := attrs["source"]; a != nil {
			p.Source, _ = d.str(a)
		}
		if a := attrs["gomaxprocs"]; a != nil {
			p.Procs, _ = d.integer(a, 1)
		}
		p.Config = json.RawMessage("{}")
		if cb := d.single(byType(inner)["config"]); cb != nil {
			p.ConfigRange = cb.DefRange()
			c := &configBuilder{d: d, ranges: map[string]hcl.Range{}, kinds: map[string]nodeKind{}}
			p.Config = c.build(cb.Body)
			p.configRanges = c.ranges
		}
		ps.list = append(ps.list, p)
	}
	return ps
}

// resolve checks a registry, broker, transport or codec label: a plugin block
// "<kind>-<label>" provides it (its ID is returned), else it must be built in.
func (d *decoder) resolve(kind string, b *hclsyntax.Block, ps *pluginSet) string {
	name := label(b)
	id := kind + "-" + name
	if ps.known[id] {
		ps.used[id] = true
		return id
	}
	builtins := builtinNames(kind)
	if isOneOf(name, builtins) {
		return ""
	}
	lr := b.LabelRanges[0]
	if name == "" {
		d.errorf(lr, fmt.Sprintf("Empty %s name", kind),
			"expected a built-in (%s) or the name of a plugin \"%s-<name>\" block", quoteList(builtins), kind)
		return ""
	}
	d.errorf(lr, fmt.Sprintf("Unknown %s %q", kind, name),
		"%q is neither a built-in %s nor a configured plugin; expected a built-in (%s), or a plugin block for it: plugin %q { version = \"...\" }",
		name, kind, quoteList(builtins), id)
	return ""
}

// warnUnused warns about plugin blocks no component uses.
func (d *decoder) warnUnused(ps *pluginSet) {
	for _, p := range ps.list {
		if !ps.used[p.ID] {
			d.warnf(p.Range, fmt.Sprintf("Unused plugin %q", p.ID),
				"no %s block names %q, so the plugin will not be used; expected %s %q { ... } to use it, or remove the plugin block",
				p.Kind, p.Name, p.Kind, p.Name)
		}
	}
}

// decodeServices decodes the service blocks.
func (d *decoder) decodeServices(blocks []*hclsyntax.Block) []*Service {
	out := []*Service{}
	seen := map[string]hcl.Range{}
	for _, b := range blocks {
		s := d.decodeService(b)
		lr := b.LabelRanges[0]
		switch {
		case s.Name == "":
			d.errorf(lr, "Empty service name", `expected a name such as service "greeter"`)
			continue
		case !serviceNameRE.MatchString(s.Name):
			d.errorf(lr, fmt.Sprintf("Invalid service name %q", s.Name),
				`expected letters, digits, ".", "_" and "-", starting with a letter or digit, such as "greeter"`)
			continue
		}
		if prev, dup := seen[s.Name]; dup {
			d.errorf(lr, fmt.Sprintf("Duplicate service %q", s.Name),
				"service %q is already defined at %s; expected each service name once", s.Name, posString(prev))
			continue
		}
		seen[s.Name] = s.Range
		out = append(out, s)
	}
	return out
}

// decodeService decodes one service block.
func (d *decoder) decodeService(b *hclsyntax.Block) *Service {
	attrs, _ := d.content(b.Body, serviceSchema)
	r := b.DefRange()
	s := &Service{
		Name: label(b), Version: DefaultServiceVersion, Address: DefaultServiceAddress,
		TTL: DefaultServiceTTL, DrainTimeout: DefaultDrainTimeout,
		Range: r, AddressRange: r, AdvertiseRange: r, PackageRange: r, BinaryRange: r,
	}
	if a := attrs["version"]; a != nil {
		if v, ok := d.str(a); ok {
			if strings.TrimSpace(v) == "" {
				d.errorf(a.Expr.Range(), `Invalid value for "version"`, `expected a version such as "1.0.0", got an empty string`)
			} else {
				s.Version = v
			}
		}
	}
	if a := attrs["address"]; a != nil {
		s.AddressRange = a.SrcRange
		if v, ok := d.address(a, listenAddr); ok {
			s.Address = v
		}
	}
	if a := attrs["advertise"]; a != nil {
		s.AdvertiseRange = a.SrcRange
		if v, ok := d.str(a); ok && v != "" {
			s.Advertise, _ = d.address(a, advertiseAddr)
		}
	}
	if a := attrs["package"]; a != nil {
		s.PackageRange = a.SrcRange
		s.Package, _ = d.str(a)
	}
	if a := attrs["binary"]; a != nil {
		s.BinaryRange = a.SrcRange
		s.Binary, _ = d.str(a)
	}
	if s.Package != "" && s.Binary != "" {
		later, earlier := attrs["binary"], attrs["package"]
		if later.SrcRange.Start.Byte < earlier.SrcRange.Start.Byte {
			later, earlier = earlier, later
		}
		d.errorf(later.NameRange, `Conflicting "package" and "binary"`,
			"service %q sets both (%s at %s); expected at most one: package (a Go package micro run builds), binary (a prebuilt executable), or neither (embedded in the host)",
			s.Name, earlier.Name, posString(earlier.SrcRange))
	}
	if a := attrs["args"]; a != nil {
		s.Args, _ = d.stringList(a)
	}
	if a := attrs["env"]; a != nil {
		s.Env, _ = d.stringMap(a, func(k string) string {
			if k == "" || strings.ContainsAny(k, "=\x00") {
				return `an environment variable name, without "="`
			}
			return ""
		})
	}
	if a := attrs["metadata"]; a != nil {
		s.Metadata, _ = d.stringMap(a, nil)
	}
	if a := attrs["ttl"]; a != nil {
		if v, ok := d.duration(a, false); ok {
			s.TTL = v
		}
	}
	if a := attrs["drain_timeout"]; a != nil {
		if v, ok := d.duration(a, true); ok {
			s.DrainTimeout = v
		}
	}
	return s
}

// decodeRegistry decodes the registry block, or returns the default.
func (d *decoder) decodeRegistry(b *hclsyntax.Block, ps *pluginSet) Registry {
	r := Registry{Name: builtinRegistries[0], Selector: DefaultSelector}
	if b == nil {
		return r
	}
	attrs, _ := d.content(b.Body, registrySchema)
	r.Name, r.Range = label(b), b.DefRange()
	r.Plugin = d.resolve(kindRegistry, b, ps)
	if a := attrs["selector"]; a != nil {
		if v, ok := d.str(a); ok {
			if isOneOf(v, selectorNames) && validSelector(v) {
				r.Selector = v
			} else {
				d.errorf(a.Expr.Range(), fmt.Sprintf("Unknown selector %q", v), "expected one of: %s", quoteList(selectorNames))
			}
		}
	}
	return r
}

// decodeBroker decodes the broker block, or returns the default.
func (d *decoder) decodeBroker(b *hclsyntax.Block, ps *pluginSet) Broker {
	if b == nil {
		return Broker{Name: builtinBrokers[0]}
	}
	d.content(b.Body, brokerSchema)
	return Broker{Name: label(b), Plugin: d.resolve(kindBroker, b, ps), Range: b.DefRange()}
}

// decodeTransport decodes the transport block, or returns the default http one.
func (d *decoder) decodeTransport(b *hclsyntax.Block, ps *pluginSet) Transport {
	t := Transport{
		Name:    builtinTransports[0],
		MaxBody: DefaultMaxBody,
		Pool:    Pool{MaxOpen: DefaultPoolMaxOpen, MaxIdle: DefaultPoolMaxIdle, WaitTimeout: DefaultPoolWait, IdleTimeout: DefaultPoolIdle},
	}
	if b == nil {
		return t
	}
	attrs, blocks := d.content(b.Body, transportSchema)
	t.Name, t.Range = label(b), b.DefRange()
	t.Plugin = d.resolve(kindTransport, b, ps)
	if t.Plugin != "" || t.Name != builtinTransports[0] {
		// Options belong to the built-in; a plugin gets its config block.
		t.MaxBody, t.Pool = 0, Pool{}
		for _, name := range []string{"http2", "max_body"} {
			if a := attrs[name]; a != nil {
				d.notForPlugin(a.NameRange, name, t.Name)
			}
		}
		for _, pb := range blocks {
			d.notForPlugin(pb.TypeRange, pb.Type, t.Name)
		}
		return t
	}
	if a := attrs["http2"]; a != nil {
		t.HTTP2, _ = d.boolean(a)
	}
	if a := attrs["max_body"]; a != nil {
		if v, ok := d.size(a); ok {
			t.MaxBody = v
		}
	}
	if pb := d.single(byType(blocks)["pool"]); pb != nil {
		d.decodePool(pb, &t.Pool)
	}
	return t
}

// notForPlugin reports an http transport option on another transport.
func (d *decoder) notForPlugin(rng hcl.Range, option, transport string) {
	d.errorf(rng, fmt.Sprintf("Unsupported argument %q for transport %q", option, transport),
		"only the built-in http transport takes %s; expected the option in the config block of plugin %q", option, kindTransport+"-"+transport)
}

// decodePool decodes the http transport's pool block into p.
func (d *decoder) decodePool(b *hclsyntax.Block, p *Pool) {
	attrs, _ := d.content(b.Body, poolSchema)
	if a := attrs["max_open"]; a != nil {
		if v, ok := d.integer(a, 1); ok {
			p.MaxOpen = v
		}
	}
	if a := attrs["max_idle"]; a != nil {
		if v, ok := d.integer(a, 1); ok {
			p.MaxIdle = v
		}
	}
	if a := attrs["wait_timeout"]; a != nil {
		if v, ok := d.duration(a, false); ok {
			p.WaitTimeout = v
		}
	}
	if a := attrs["idle_timeout"]; a != nil {
		if v, ok := d.duration(a, false); ok {
			p.IdleTimeout = v
		}
	}
	if p.MaxIdle > p.MaxOpen {
		rng := b.DefRange()
		if a := attrs["max_idle"]; a != nil {
			rng = a.Expr.Range()
		}
		d.errorf(rng, `Invalid value for "max_idle"`, "expected at most max_open (%d), got %d", p.MaxOpen, p.MaxIdle)
	}
}

// decodeCodecs decodes the codec blocks, or returns the built-ins.
func (d *decoder) decodeCodecs(blocks []*hclsyntax.Block, ps *pluginSet) []*Codec {
	var out []*Codec
	if len(blocks) == 0 {
		for _, name := range builtinCodecs {
			out = append(out, &Codec{Name: name})
		}
		return out
	}
	seen := map[string]hcl.Range{}
	for _, b := range blocks {
		d.content(b.Body, codecSchema)
		name := label(b)
		if prev, dup := seen[name]; dup {
			d.errorf(b.LabelRanges[0], fmt.Sprintf("Duplicate codec %q", name),
				"codec %q is already listed at %s; expected each codec once", name, posString(prev))
			continue
		}
		seen[name] = b.DefRange()
		out = append(out, &Codec{Name: name, Plugin: d.resolve(kindCodec, b, ps), Range: b.DefRange()})
	}
	return out
}
