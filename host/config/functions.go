package config

import (
	"errors"
	"fmt"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// functions returns the functions expressions may call: env and a few string
// helpers from cty's standard library.
func functions(lookupEnv func(string) (string, bool)) map[string]function.Function {
	return map[string]function.Function{
		"env":       envFunc(lookupEnv),
		"format":    stdlib.FormatFunc,
		"join":      stdlib.JoinFunc,
		"lower":     stdlib.LowerFunc,
		"trimspace": stdlib.TrimSpaceFunc,
		"upper":     stdlib.UpperFunc,
	}
}

// functionNames lists the functions, sorted, for messages.
func functionNames(funcs map[string]function.Function) []string {
	names := make([]string, 0, len(funcs))
	for name := range funcs {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// envUnsetError is env's error for a variable that is not set and has no default.
type envUnsetError struct{ name string }

func (e *envUnsetError) Error() string {
	return fmt.Sprintf("environment variable %q is not set", e.name)
}

// envFunc is env(name) or env(name, default): the value of an environment
// variable, looked up with lookup; the default, if given, when it is unset.
func envFunc(lookup func(string) (string, bool)) function.Function {
	return function.New(&function.Spec{
		Description: "Returns the value of an environment variable, or the default given as second argument when it is not set.",
		Params:      []function.Parameter{{Name: "name", Type: cty.String}},
		VarParam:    &function.Parameter{Name: "default", Type: cty.String},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if len(args) > 2 {
				return cty.UnknownVal(cty.String), function.NewArgErrorf(2, "env takes a name and at most one default, as in env(%q, \"fallback\")", args[0].AsString())
			}
			name := args[0].AsString()
			if name == "" {
				return cty.UnknownVal(cty.String), function.NewArgErrorf(0, "expected the name of an environment variable, got an empty string")
			}
			if v, ok := lookup(name); ok {
				return cty.StringVal(v), nil
			}
			if len(args) == 2 {
				return args[1], nil
			}
			return cty.UnknownVal(cty.String), &envUnsetError{name: name}
		},
	})
}

// polishDiagnostics rewrites hcl's generic function-call diagnostics so they say
// what was expected: an unset env() variable, an unknown function.
func polishDiagnostics(diags hcl.Diagnostics, funcs []string) hcl.Diagnostics {
	for i, d := range diags {
		if extra, ok := hcl.DiagnosticExtra[hclsyntax.FunctionCallDiagExtra](d); ok && extra.CalledFunctionName() == "env" {
			var unset *envUnsetError
			if errors.As(extra.FunctionCallError(), &unset) {
				c := *d
				c.Summary = fmt.Sprintf("Environment variable %q is not set", unset.name)
				c.Detail = fmt.Sprintf("expected %s in the environment, or a default: env(%q, \"fallback\")", unset.name, unset.name)
				diags[i] = &c
				continue
			}
		}
		if fc, ok := d.Expression.(*hclsyntax.FunctionCallExpr); ok && d.Summary == "Call to unknown function" {
			c := *d
			c.Summary = fmt.Sprintf("Unknown function %q", fc.Name)
			c.Detail = "expected one of: " + quoteList(funcs)
			diags[i] = &c
		}
	}
	return diags
}
