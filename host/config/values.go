package config

import (
	"fmt"
	"math"
	"math/big"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// eval evaluates expr after checking its references. ok is false when the value
// cannot be used: a problem already reported, or a value unknown because of one
// (an unset variable). A null value is ok; callers treat it as "not set".
func (d *decoder) eval(expr hcl.Expression) (cty.Value, bool) {
	if !d.checkReferences(expr) {
		return cty.NilVal, false
	}
	v, diags := expr.Value(d.ctx)
	d.diags = append(d.diags, polishDiagnostics(diags, d.funcNames)...)
	if diags.HasErrors() || !v.IsWhollyKnown() {
		return cty.NilVal, false
	}
	v, _ = v.UnmarkDeep()
	return v, true
}

// checkReferences reports references other than var.<declared name> (or any
// reference at all while variables are being decoded) and returns whether expr
// may be evaluated.
func (d *decoder) checkReferences(expr hcl.Expression) bool {
	ok := true
	for _, tr := range expr.Variables() {
		rng := tr.SourceRange()
		name := traversalString(tr)
		root := tr.RootName()
		switch {
		case root != "var":
			detail := `expected var.<name>, a function call such as env("NAME"), or a literal value`
			if len(tr) == 1 {
				detail += fmt.Sprintf(`; to write the string, quote it: "%s"`, root)
			}
			d.errorf(rng, fmt.Sprintf("Unknown reference %q", name), "%s", detail)
		case d.inVariables:
			d.errorf(rng, fmt.Sprintf("Reference %q in a variable block", name),
				`expected a literal value or a function call such as env("NAME"); a variable's default cannot refer to variables`)
		default:
			step, isAttr := traversalStep(tr)
			if !isAttr {
				d.errorf(rng, fmt.Sprintf("Invalid variable reference %q", name), "expected var.<name>, such as var.zone")
				break
			}
			if _, declared := d.vars[step]; !declared {
				d.errorf(rng, fmt.Sprintf("Undeclared variable %q", step), "%s", d.undeclaredDetail(step))
				break
			}
			continue
		}
		ok = false
	}
	return ok
}

// traversalStep returns the name after "var." when tr is var.<name>....
func traversalStep(tr hcl.Traversal) (string, bool) {
	if len(tr) < 2 {
		return "", false
	}
	switch s := tr[1].(type) {
	case hcl.TraverseAttr:
		return s.Name, true
	case hcl.TraverseIndex:
		if s.Key.Type() == cty.String && s.Key.IsKnown() && !s.Key.IsNull() {
			return s.Key.AsString(), true
		}
	}
	return "", false
}

// undeclaredDetail says what a reference to an undeclared variable should be.
func (d *decoder) undeclaredDetail(name string) string {
	declare := fmt.Sprintf(`a block declaring it: variable %q { default = ... }`, name)
	if len(d.varOrder) == 0 {
		return "expected " + declare
	}
	refs := make([]string, len(d.varOrder))
	for i, v := range d.varOrder {
		refs[i] = "var." + v
	}
	return "expected one of: " + quoteList(refs) + "; or " + declare
}

// traversalString renders a traversal as written, roughly: var.a.b, foo[0].
func traversalString(tr hcl.Traversal) string {
	var b strings.Builder
	for _, step := range tr {
		switch s := step.(type) {
		case hcl.TraverseRoot:
			b.WriteString(s.Name)
		case hcl.TraverseAttr:
			b.WriteString("." + s.Name)
		default:
			b.WriteString("[…]")
		}
	}
	return b.String()
}

// typeDesc describes what a value is, for "got ..." in details.
func typeDesc(v cty.Value) string {
	if v.IsNull() {
		return "null"
	}
	t := v.Type()
	switch {
	case t == cty.String:
		return "a string"
	case t == cty.Number:
		return "a number"
	case t == cty.Bool:
		return "a bool"
	case t.IsTupleType() || t.IsListType() || t.IsSetType():
		return "a list"
	case t.IsObjectType() || t.IsMapType():
		return "a map"
	}
	return t.FriendlyName()
}

// value evaluates an attribute and converts it to ty; a failed conversion is
// reported as summary with detail "expected <expected>, got ...". ok is false
// for a null value or any problem.
func (d *decoder) value(a *hclsyntax.Attribute, ty cty.Type, summary, expected string) (cty.Value, bool) {
	v, ok := d.eval(a.Expr)
	if !ok || v.IsNull() {
		return cty.NilVal, false
	}
	c, err := convert.Convert(v, ty)
	if err != nil {
		d.errorf(a.Expr.Range(), summary, "expected %s, got %s", expected, typeDesc(v))
		return cty.NilVal, false
	}
	return c, true
}

func invalid(a *hclsyntax.Attribute) string { return fmt.Sprintf("Invalid value for %q", a.Name) }

// str decodes a string attribute.
func (d *decoder) str(a *hclsyntax.Attribute) (string, bool) {
	v, ok := d.value(a, cty.String, invalid(a), "a string")
	if !ok {
		return "", false
	}
	return v.AsString(), true
}

// boolean decodes a bool attribute.
func (d *decoder) boolean(a *hclsyntax.Attribute) (bool, bool) {
	v, ok := d.value(a, cty.Bool, invalid(a), "true or false")
	if !ok {
		return false, false
	}
	return v.True(), true
}

// integer decodes a whole-number attribute of at least min.
func (d *decoder) integer(a *hclsyntax.Attribute, min int) (int, bool) {
	expected := fmt.Sprintf("a whole number of at least %d", min)
	v, ok := d.value(a, cty.Number, invalid(a), expected)
	if !ok {
		return 0, false
	}
	bf := v.AsBigFloat()
	i, acc := bf.Int64()
	if !bf.IsInt() || acc != big.Exact || i < int64(min) || i > math.MaxInt32 {
		d.errorf(a.Expr.Range(), invalid(a), "expected %s, got %s", expected, bf.Text('g', 10))
		return 0, false
	}
	return int(i), true
}

// duration decodes a Go duration string ("30s", "1m30s"); zero is accepted only
// when allowZero, negative durations never.
func (d *decoder) duration(a *hclsyntax.Attribute, allowZero bool) (time.Duration, bool) {
	summary := fmt.Sprintf("Invalid duration for %q", a.Name)
	expected := `a duration of 0s or more, such as "10s" or "1m30s"`
	if !allowZero {
		expected = `a positive duration such as "30s" or "1m30s"`
	}
	v, ok := d.eval(a.Expr)
	if !ok || v.IsNull() {
		return 0, false
	}
	switch v.Type() {
	case cty.String:
	case cty.Number:
		d.errorf(a.Expr.Range(), summary, "expected %s, got the number %s (a duration is a string with a unit)", expected, v.AsBigFloat().Text('g', 10))
		return 0, false
	default:
		d.errorf(a.Expr.Range(), summary, "expected %s, got %s", expected, typeDesc(v))
		return 0, false
	}
	s := v.AsString()
	dur, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || dur < 0 || (dur == 0 && !allowZero) {
		d.errorf(a.Expr.Range(), summary, "expected %s, got %q", expected, s)
		return 0, false
	}
	return dur, true
}

// sizeExpected describes a size in details.
const sizeExpected = `a positive size such as "4MiB", "512KiB" or a whole number of bytes`

// size decodes a positive byte size: a whole number of bytes, or a string such as
// "4MiB" (units B, KB, MB, GB, TB in powers of 1000, KiB, MiB, GiB, TiB in powers
// of 1024, any case, fractions allowed when the result is whole bytes).
func (d *decoder) size(a *hclsyntax.Attribute) (int64, bool) {
	summary := fmt.Sprintf("Invalid size for %q", a.Name)
	v, ok := d.eval(a.Expr)
	if !ok || v.IsNull() {
		return 0, false
	}
	var text string
	switch v.Type() {
	case cty.Number:
		text = v.AsBigFloat().Text('f', -1)
	case cty.String:
		text = v.AsString()
	default:
		d.errorf(a.Expr.Range(), summary, "expected %s, got %s", sizeExpected, typeDesc(v))
		return 0, false
	}
	n, err := parseSize(text)
	if err != nil || n <= 0 {
		got := strconv.Quote(text)
		if v.Type() == cty.Number {
			got = text
		}
		d.errorf(a.Expr.Range(), summary, "expected %s, got %s", sizeExpected, got)
		return 0, false
	}
	return n, true
}

// sizeUnits are the units parseSize accepts, in lower case.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// parseSize parses "4MiB", "1.5 KiB", "100" into bytes.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(s)
	}
	num, unit := s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	mult, ok := sizeUnits[unit]
	if num == "" || !ok {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	if !r.IsInt() || !r.Num().IsInt64() {
		return 0, fmt.Errorf("size %q is not a whole number of bytes that fits in 64 bits", s)
	}
	return r.Num().Int64(), nil
}

// stringList decodes a list of strings.
func (d *decoder) stringList(a *hclsyntax.Attribute) ([]string, bool) {
	v, ok := d.value(a, cty.List(cty.String), invalid(a), "a list of strings")
	if !ok {
		return nil, false
	}
	out := make([]string, 0, v.LengthInt())
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if e.IsNull() {
			d.errorf(a.Expr.Range(), invalid(a), "expected a list of strings, got a null element")
			return nil, false
		}
		out = append(out, e.AsString())
	}
	return out, true
}

// stringMap decodes a map of strings; keyOK, if set, validates each key and
// returns what was expected when it fails.
func (d *decoder) stringMap(a *hclsyntax.Attribute, keyOK func(string) string) (map[string]string, bool) {
	v, ok := d.value(a, cty.Map(cty.String), invalid(a), "a map of strings such as { key = \"value\" }")
	if !ok {
		return nil, false
	}
	out := make(map[string]string, v.LengthInt())
	for it := v.ElementIterator(); it.Next(); {
		k, e := it.Element()
		key := k.AsString()
		if e.IsNull() {
			d.errorf(a.Expr.Range(), invalid(a), "expected a map of strings, got null for %q", key)
			return nil, false
		}
		if keyOK != nil {
			if expected := keyOK(key); expected != "" {
				d.errorf(a.Expr.Range(), fmt.Sprintf("Invalid key %q in %q", key, a.Name), "expected %s", expected)
				return nil, false
			}
		}
		out[key] = e.AsString()
	}
	return out, true
}

// addrRule says what an address attribute accepts.
type addrRule int

const (
	listenAddr    addrRule = iota // host:port, empty host = every interface, port 0 = any free port
	advertiseAddr                 // host:port with a host and a non-zero port
)

// address decodes a host:port attribute.
func (d *decoder) address(a *hclsyntax.Attribute, rule addrRule) (string, bool) {
	s, ok := d.str(a)
	if !ok {
		return "", false
	}
	if !validAddress(s, rule) {
		expected := `host:port such as "127.0.0.1:8080" (port 0-65535; an empty host listens on every interface)`
		if rule == advertiseAddr {
			expected = `host:port that other nodes can reach, such as "10.0.0.5:8080" (port 1-65535)`
		}
		d.errorf(a.Expr.Range(), fmt.Sprintf("Invalid address for %q", a.Name), "expected %s, got %q", expected, s)
		return "", false
	}
	return s, true
}

// validAddress checks host:port against rule.
func validAddress(s string, rule addrRule) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || strings.ContainsAny(host, " \t/") {
		return false
	}
	if port == "" || strings.TrimLeft(port, "0123456789") != "" {
		return false
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return false
	}
	if rule == advertiseAddr && (host == "" || p == 0) {
		return false
	}
	return true
}
