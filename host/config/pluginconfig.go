package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// configBuilder turns a plugin's schema-less config block into JSON, recording
// where each value came from. Attributes become members; a block becomes an
// object member named by its type, its labels nesting as further keys; a block
// repeated under the same type and labels becomes an array of objects.
type configBuilder struct {
	d      *decoder
	ranges map[string]hcl.Range // JSON pointer → source
	kinds  map[string]nodeKind  // JSON pointer → what is there
}

type nodeKind byte

const (
	attrNode  nodeKind = iota + 1 // an attribute's value
	blockNode                     // one block's object
	labelNode                     // an object keyed by block labels
	listNode                      // an array of repeated blocks
)

// build converts body into a JSON object.
func (c *configBuilder) build(body *hclsyntax.Body) json.RawMessage {
	obj := c.object(body, "")
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // "orders.>" stays readable
	// Encode cannot fail: every leaf is JSON from cty.
	if err := enc.Encode(obj); err != nil {
		c.d.errorf(body.SrcRange, "Invalid plugin config", "expected values that convert to JSON: %v", err)
		return json.RawMessage("{}")
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// object converts one body, whose JSON pointer is ptr.
func (c *configBuilder) object(body *hclsyntax.Body, ptr string) map[string]any {
	obj := map[string]any{}
	attrs := make([]*hclsyntax.Attribute, 0, len(body.Attributes))
	for _, a := range body.Attributes {
		attrs = append(attrs, a)
	}
	sort.Slice(attrs, func(i, j int) bool { return attrs[i].SrcRange.Start.Byte < attrs[j].SrcRange.Start.Byte })
	for _, a := range attrs {
		p := ptr + "/" + escapePointer(a.Name)
		c.ranges[p] = a.SrcRange
		c.kinds[p] = attrNode
		v, ok := c.d.eval(a.Expr)
		if !ok {
			obj[a.Name] = nil
			continue
		}
		raw, err := ctyjson.Marshal(v, v.Type())
		if err == nil {
			raw, err = plainJSON(raw)
		}
		if err != nil {
			c.d.errorf(a.Expr.Range(), invalid(a), "expected a value that converts to JSON: %v", err)
			obj[a.Name] = nil
			continue
		}
		obj[a.Name] = json.RawMessage(raw)
	}

	count := map[string]int{}
	for _, b := range body.Blocks {
		count[blockKey(b)]++
	}
	for _, b := range body.Blocks {
		c.block(obj, ptr, b, count[blockKey(b)] > 1)
	}
	return obj
}

// block adds one nested block to obj.
func (c *configBuilder) block(obj map[string]any, ptr string, b *hclsyntax.Block, repeated bool) {
	keys := append([]string{b.Type}, b.Labels...)
	cur := obj
	for i, k := range keys {
		ptr += "/" + escapePointer(k)
		rng := b.TypeRange
		if i > 0 {
			rng = b.LabelRanges[i-1]
		}
		last := i == len(keys)-1
		want := labelNode
		switch {
		case last && repeated:
			want = listNode
		case last:
			want = blockNode
		}
		existing, exists := cur[k]
		if exists && c.kinds[ptr] != want || exists && want == blockNode {
			c.d.errorf(rng, fmt.Sprintf("Duplicate config key %q", k),
				"%q is already set at %s; expected each key once (repeat a block with the same type and labels for a list)", k, posString(c.ranges[ptr]))
			return
		}
		if !exists {
			c.ranges[ptr] = rng
			c.kinds[ptr] = want
		}
		switch want {
		case labelNode:
			if !exists {
				existing = map[string]any{}
				cur[k] = existing
			}
			cur = existing.(map[string]any)
		case blockNode:
			cur[k] = c.object(b.Body, ptr)
		case listNode:
			list, _ := existing.([]any)
			item := ptr + "/" + strconv.Itoa(len(list))
			c.ranges[item] = b.DefRange()
			c.kinds[item] = blockNode
			cur[k] = append(list, c.object(b.Body, item))
		}
	}
}

// blockKey identifies blocks that repeat: same type, same labels.
func blockKey(b *hclsyntax.Block) string {
	return strings.Join(append([]string{b.Type}, b.Labels...), "\x00")
}

// escapePointer escapes a JSON pointer reference token (RFC 6901).
func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// posString renders a range's start as file:line:col.
func posString(r hcl.Range) string {
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}

// plainJSON re-encodes JSON without the HTML escaping cty's marshaller applies
// (so "orders.>" is not "orders.\u003e"), keeping numbers exactly as they are.
func plainJSON(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
