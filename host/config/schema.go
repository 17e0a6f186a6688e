package config

import (
	"fmt"
	"slices"

	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// bodySchema is what a body may contain. Unlike hcl.BodySchema it carries what
// the diagnostics need to say what was expected.
type bodySchema struct {
	attrs  []string    // argument names
	blocks []blockSpec // nested block types
}

// blockSpec is one nested block type with zero or one label.
type blockSpec struct {
	typ   string
	label string // the label's placeholder, such as "name"; empty for none
}

// usage renders how the block is written, such as service "<name>" { ... }.
func (s blockSpec) usage() string {
	if s.label == "" {
		return s.typ + " { ... }"
	}
	return fmt.Sprintf("%s \"<%s>\" { ... }", s.typ, s.label)
}

// content returns the attributes and well-formed blocks of body that s allows,
// reporting every other attribute or block and every block with the wrong
// number of labels.
func (d *decoder) content(body *hclsyntax.Body, s bodySchema) (map[string]*hclsyntax.Attribute, []*hclsyntax.Block) {
	blockTypes := make([]string, len(s.blocks))
	for i, b := range s.blocks {
		blockTypes[i] = b.typ
	}
	attrs := map[string]*hclsyntax.Attribute{}
	for name, a := range body.Attributes {
		if slices.Contains(s.attrs, name) {
			attrs[name] = a
			continue
		}
		var detail string
		switch {
		case slices.Contains(blockTypes, name):
			detail = fmt.Sprintf("%q is a block: expected %s, without \"=\"", name, s.spec(name).usage())
		case len(s.attrs) == 0:
			detail = "no arguments are allowed here"
			if len(blockTypes) > 0 {
				detail += "; expected blocks: " + quoteList(blockTypes)
			}
		default:
			detail = "expected one of: " + quoteList(s.attrs)
		}
		d.errorf(a.NameRange, fmt.Sprintf("Unsupported argument %q", name), "%s", detail)
	}

	var blocks []*hclsyntax.Block
	for _, b := range body.Blocks {
		if !slices.Contains(blockTypes, b.Type) {
			var detail string
			switch {
			case slices.Contains(s.attrs, b.Type):
				detail = fmt.Sprintf("%q is an argument: expected %s = <value>", b.Type, b.Type)
			case len(blockTypes) == 0:
				detail = "no blocks are allowed here"
				if len(s.attrs) > 0 {
					detail += "; expected arguments: " + quoteList(s.attrs)
				}
			default:
				detail = "expected one of: " + quoteList(blockTypes)
			}
			d.errorf(b.TypeRange, fmt.Sprintf("Unsupported block type %q", b.Type), "%s", detail)
			continue
		}
		spec := s.spec(b.Type)
		switch want := btoi(spec.label != ""); {
		case len(b.Labels) < want:
			d.errorf(b.TypeRange, fmt.Sprintf("Missing %s label for %s block", spec.label, b.Type), "expected %s", spec.usage())
			continue
		case len(b.Labels) > want:
			detail := "expected " + spec.usage()
			if want == 0 {
				detail += ", without labels"
			}
			d.errorf(b.LabelRanges[want], fmt.Sprintf("Extraneous label for %s block", b.Type), "%s", detail)
			continue
		}
		blocks = append(blocks, b)
	}
	return attrs, blocks
}

// spec returns the block spec of type typ.
func (s bodySchema) spec(typ string) blockSpec {
	for _, b := range s.blocks {
		if b.typ == typ {
			return b
		}
	}
	return blockSpec{typ: typ}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// label returns a block's first label, or "".
func label(b *hclsyntax.Block) string {
	if len(b.Labels) == 0 {
		return ""
	}
	return b.Labels[0]
}

// byType groups blocks by type, keeping file order.
func byType(blocks []*hclsyntax.Block) map[string][]*hclsyntax.Block {
	m := map[string][]*hclsyntax.Block{}
	for _, b := range blocks {
		m[b.Type] = append(m[b.Type], b)
	}
	return m
}

// single returns the first of blocks (nil for none), reporting every other one
// as a duplicate of it.
func (d *decoder) single(blocks []*hclsyntax.Block) *hclsyntax.Block {
	if len(blocks) == 0 {
		return nil
	}
	first := blocks[0]
	for _, b := range blocks[1:] {
		what := b.Type
		if l := label(first); l != "" {
			what = fmt.Sprintf("%s %q", b.Type, l)
		}
		d.errorf(b.DefRange(), fmt.Sprintf("Duplicate %s block", b.Type),
			"%s is already configured at %s; expected at most one %s block", what, posString(first.DefRange()), b.Type)
	}
	return first
}
