// Package schema describes Go types as JSON Schema (draft 2020-12), so a
// service can publish the shape of each endpoint's request and response and the
// gateway can document and check them without importing the service's code.
package schema

import (
	"encoding"
	"encoding/json"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Schema is one JSON Schema object, kept as a map so it marshals to exactly the
// keywords set.
type Schema = map[string]any

// Registry endpoint metadata keys under which a server publishes the JSON
// Schema of an endpoint's request and response (see sdk/server).
const (
	RequestKey  = "request_schema"
	ResponseKey = "response_schema"
)

// RefPrefix is where For puts named struct types: "#/$defs/<Name>".
const RefPrefix = "#/$defs/"

// For returns the JSON Schema of v's type (v may be a value, a pointer or a
// reflect.Type). Named struct types go to "$defs" and are referenced by "$ref",
// so recursive types terminate; the root is itself a "$ref" when v is a named
// struct. Object properties follow encoding/json: tag names, "-" skipped,
// embedded structs flattened. No property is marked required, since
// encoding/json fills absent fields with their zero values.
func For(v any) Schema {
	t, ok := v.(reflect.Type)
	if !ok {
		t = reflect.TypeOf(v)
	}
	g := &generator{defs: map[string]Schema{}, names: map[reflect.Type]string{}}
	root := g.schema(t)
	if len(g.defs) > 0 {
		root["$defs"] = g.defs
	}
	return root
}

// JSON is For marshalled, for registry endpoint metadata.
func JSON(v any) string {
	b, err := json.Marshal(For(v))
	if err != nil { // only maps, slices, strings and bools: cannot fail
		return "{}"
	}
	return string(b)
}

var (
	typeTime        = reflect.TypeFor[time.Time]()
	typeRaw         = reflect.TypeFor[json.RawMessage]()
	typeMarshaler   = reflect.TypeFor[json.Marshaler]()
	typeTextMarshal = reflect.TypeFor[encoding.TextMarshaler]()
)

// unsafeName matches what a $defs key may not hold (OpenAPI component names are
// [A-Za-z0-9._-]).
var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

type generator struct {
	defs  map[string]Schema
	names map[reflect.Type]string // named struct type → its $defs key
}

func (g *generator) schema(t reflect.Type) Schema {
	if t == nil {
		return Schema{}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == typeTime:
		return Schema{"type": "string", "format": "date-time"}
	case t == typeRaw:
		return Schema{}
	case t.Implements(typeMarshaler) || reflect.PointerTo(t).Implements(typeMarshaler):
		return Schema{} // its own encoding: any shape
	case t.Implements(typeTextMarshal) || reflect.PointerTo(t).Implements(typeTextMarshal):
		return Schema{"type": "string"}
	}
	switch t.Kind() {
	case reflect.Bool:
		return Schema{"type": "boolean"}
	case reflect.Int8, reflect.Int16, reflect.Int32:
		return Schema{"type": "integer", "format": "int32"}
	case reflect.Int, reflect.Int64:
		return Schema{"type": "integer", "format": "int64"}
	case reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return Schema{"type": "integer", "minimum": 0}
	case reflect.Uint, reflect.Uint64, reflect.Uintptr:
		return Schema{"type": "integer", "minimum": 0}
	case reflect.Float32:
		return Schema{"type": "number", "format": "float"}
	case reflect.Float64:
		return Schema{"type": "number", "format": "double"}
	case reflect.String:
		return Schema{"type": "string"}
	case reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 { // encoding/json: []byte is base64, [N]byte an array
			return Schema{"type": "string", "contentEncoding": "base64"}
		}
		return Schema{"type": "array", "items": g.schema(t.Elem())}
	case reflect.Map:
		return Schema{"type": "object", "additionalProperties": g.schema(t.Elem())}
	case reflect.Struct:
		if t.Name() == "" {
			return g.object(t)
		}
		return Schema{"$ref": RefPrefix + g.define(t)}
	}
	return Schema{} // interfaces, funcs, channels: any value
}

// define puts the named struct t in $defs once and returns its key.
func (g *generator) define(t reflect.Type) string {
	if name, ok := g.names[t]; ok {
		return name
	}
	base := unsafeName.ReplaceAllString(t.Name(), "_")
	name := base
	for i := 2; g.taken(name); i++ {
		name = base + "_" + strconv.Itoa(i)
	}
	g.names[t] = name
	g.defs[name] = Schema{} // reserve before recursing
	g.defs[name] = g.object(t)
	return name
}

func (g *generator) taken(name string) bool {
	_, ok := g.defs[name]
	return ok
}

// object describes a struct's JSON properties.
func (g *generator) object(t reflect.Type) Schema {
	props := Schema{}
	g.fields(t, props)
	return Schema{"type": "object", "properties": props}
}

// fields adds t's JSON fields to props; untagged embedded structs are flattened
// and their fields do not replace the outer struct's.
func (g *generator) fields(t reflect.Type, props Schema) {
	var embedded []reflect.Type
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				embedded = append(embedded, ft)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		s := g.schema(f.Type)
		if strings.Contains(tag, ",string") && quotable(f.Type) {
			s = Schema{"type": "string"}
		}
		props[name] = s
	}
	for _, et := range embedded {
		inner := Schema{}
		g.fields(et, inner)
		for k, v := range inner {
			if _, ok := props[k]; !ok {
				props[k] = v
			}
		}
	}
}

// quotable reports whether encoding/json's ",string" option applies to t: it
// quotes strings, numbers and booleans and ignores it on anything else.
func quotable(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}
