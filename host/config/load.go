package config

import (
	_ "embed"
	"fmt"
	"maps"
	"os"
	"slices"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// defaultHCL is the embedded default configuration: what `micro run` starts
// when there is no micro.hcl.
//
//go:embed default.hcl
var defaultHCL []byte

// defaultFilename names the embedded default in diagnostics.
const defaultFilename = "(embedded default.hcl)"

// Option adjusts how a config is loaded.
type Option func(*options)

type options struct {
	vars      map[string]string
	lookupEnv func(string) (string, bool)
}

// WithVars overrides variable values: each key must be a declared variable. A
// value replaces the default as a string, converted to a number or bool when
// the default is one. Several WithVars merge, later ones winning.
func WithVars(vars map[string]string) Option {
	vars = maps.Clone(vars)
	return func(o *options) {
		if o.vars == nil {
			o.vars = map[string]string{}
		}
		maps.Copy(o.vars, vars)
	}
}

// WithEnv sets the lookup env() uses (default os.LookupEnv; nil restores it).
func WithEnv(lookup func(string) (string, bool)) Option {
	return func(o *options) {
		o.lookupEnv = lookup
		if lookup == nil {
			o.lookupEnv = os.LookupEnv
		}
	}
}

// Load reads and decodes the config file at path. A missing or unreadable file
// is an error wrapping the os error (errors.Is(err, fs.ErrNotExist) tells a
// missing file); problems in the file are an *Error listing them all.
func Load(path string, opts ...Option) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(src, path, opts...)
}

// Parse decodes config source; filename is used in diagnostics. Every problem is
// reported in one *Error; on success the Config has every default filled in and
// its Warnings set.
func Parse(src []byte, filename string, opts ...Option) (*Config, error) {
	o := options{lookupEnv: os.LookupEnv}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	file, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, newError(diags)
	}
	body, ok := file.Body.(*hclsyntax.Body)
	if !ok { // hclsyntax always returns its own body type
		return nil, fmt.Errorf("config %s: unexpected body type %T", filename, file.Body)
	}
	funcs := functions(o.lookupEnv)
	d := &decoder{
		file:      filename,
		opts:      o,
		funcNames: functionNames(funcs),
		ctx:       &hcl.EvalContext{Functions: funcs},
		vars:      map[string]cty.Value{},
	}
	cfg := d.decodeFile(body)
	if errs := errorsOnly(d.diags); len(errs) > 0 {
		return nil, newError(errs)
	}
	cfg.EvalContext = d.ctx
	cfg.Warnings = warningsOnly(d.diags)
	sortDiagnostics(cfg.Warnings)
	return cfg, nil
}

// newError sorts the error diagnostics by position into an *Error.
func newError(diags hcl.Diagnostics) *Error {
	errs := errorsOnly(diags)
	sortDiagnostics(errs)
	return &Error{Diagnostics: errs}
}

// Default returns a new copy of the embedded default configuration: the memory
// registry and broker, the http transport, the json and msgpack codecs, the
// embedded "helloworld" service, and a gateway routing to it.
func Default() *Config {
	cfg, err := Parse(defaultHCL, defaultFilename, WithEnv(func(string) (string, bool) { return "", false }))
	if err != nil {
		// default.hcl is part of the package and tested: this is a build defect.
		panic("config: the embedded default.hcl is invalid: " + err.Error())
	}
	return cfg
}

// DefaultSource returns the text of the embedded default configuration, a
// starting point for a micro.hcl.
func DefaultSource() []byte { return slices.Clone(defaultHCL) }

// decoder holds the state of one Parse.
type decoder struct {
	file      string
	opts      options
	funcNames []string
	ctx       *hcl.EvalContext
	// vars are the declared variables' values (cty.DynamicVal when unset);
	// varOrder their names in file order.
	vars        map[string]cty.Value
	varOrder    []string
	inVariables bool // decoding variable blocks: no references allowed
	diags       hcl.Diagnostics
	// targets are the endpoints gateway routes and parts call.
	targets []Target
}

// errorf records an error diagnostic at rng.
func (d *decoder) errorf(rng hcl.Range, summary, detail string, args ...any) {
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(detail, args...),
		Subject:  rng.Ptr(),
	})
}

// warnf records a warning diagnostic at rng.
func (d *decoder) warnf(rng hcl.Range, summary, detail string, args ...any) {
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagWarning,
		Summary:  summary,
		Detail:   fmt.Sprintf(detail, args...),
		Subject:  rng.Ptr(),
	})
}
