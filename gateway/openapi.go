package gateway

import (
	"cmp"
	"context"
	"encoding/json"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/schema"
)

// OpenAPIVersion is the version of the document served at /api/docs/openapi.json.
const OpenAPIVersion = "3.1.0"

// componentPrefix is where the document keeps named schemas.
const componentPrefix = "#/components/schemas/"

// docMethods are the operations a route without a method is documented with.
var docMethods = []string{"get", "post", "put", "patch", "delete"}

// openAPI generates the OpenAPI 3.1 document of the routes in force, with the
// request and response schemas of each endpoint: the Go types given with the
// Types option or a Route's Request/Response, else the JSON Schemas the
// service published in the registry, else any object.
func (st *state) openAPI(ctx context.Context) map[string]any {
	d := &docBuilder{st: st, ctx: ctx, paths: map[string]map[string]any{}, components: map[string]any{
		"Problem": problemSchema(),
	}, opIDs: map[string]int{}}
	for _, h := range st.routes {
		d.route(h)
	}
	for _, h := range st.aggs {
		d.aggregate(h)
	}
	paths := map[string]any{}
	for p, ops := range d.paths {
		paths[p] = ops
	}
	components := map[string]any{"schemas": d.components}
	if d.secured {
		components["securitySchemes"] = map[string]any{bearerScheme: map[string]any{
			"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
		}}
	}
	return map[string]any{
		"openapi":    OpenAPIVersion,
		"info":       map[string]any{"title": st.cfg.Docs.Title, "version": st.cfg.Docs.Version},
		"paths":      paths,
		"components": components,
	}
}

// bearerScheme names the security scheme of routes that need a token.
const bearerScheme = "bearerAuth"

// secure documents that op needs a bearer token (when acc says so): the
// security requirement, and the 401 and 403 answers a caller can get.
func (d *docBuilder) secure(op map[string]any, acc *access) {
	if acc == nil {
		return
	}
	d.secured = true
	op["security"] = []any{map[string]any{bearerScheme: []any{}}}
	problem := map[string]any{"$ref": componentPrefix + "Problem"}
	responses := op["responses"].(map[string]any)
	responses["401"] = content("No valid bearer token", ProblemContentType, problem)
	if len(acc.roles) > 0 {
		which := "any"
		if acc.all {
			which = "all"
		}
		responses["403"] = content("The token lacks the required roles ("+which+" of "+strings.Join(acc.roles, ", ")+")", ProblemContentType, problem)
	}
}

type docBuilder struct {
	st         *state
	ctx        context.Context
	paths      map[string]map[string]any
	components map[string]any
	opIDs      map[string]int
	secured    bool // some operation needs a bearer token
}

// docPath turns a ServeMux path into an OpenAPI path template.
func docPath(p *pattern) string {
	path := strings.TrimSuffix(p.path, "{$}")
	return strings.ReplaceAll(path, "...}", "}")
}

func (d *docBuilder) methods(p *pattern) []string {
	if p.method == "" {
		return docMethods
	}
	return []string{strings.ToLower(p.method)}
}

// route documents a Route.
func (d *docBuilder) route(h *routeHandler) {
	r := h.route
	req, resp := d.schemas(r.Service, r.Endpoint, r.Request, r.Response)
	for _, m := range d.methods(h.pat) {
		op := map[string]any{
			"operationId": d.opID(r.Endpoint, m, h.pat),
			"summary":     cmp.Or(r.Summary, r.Service+" "+r.Endpoint),
			"parameters":  d.parameters(h.pat, h.bodyParams, req, m),
			"responses": map[string]any{
				"200":     content("OK", "application/json", resp),
				"default": content("Error", ProblemContentType, map[string]any{"$ref": componentPrefix + "Problem"}),
			},
		}
		if !strings.Contains(r.Service, "{") {
			op["tags"] = []string{r.Service}
		}
		if r.Description != "" {
			op["description"] = r.Description
		}
		if hasBody(m) {
			op["requestBody"] = requestBody(req)
		}
		d.secure(op, h.access)
		d.add(h.pat, m, op)
	}
}

// aggregate documents an Aggregate: the answer is an object of its parts.
func (d *docBuilder) aggregate(h *aggregateHandler) {
	a := h.agg
	props := map[string]any{}
	var req map[string]any
	for _, p := range a.Parts {
		preq, presp := d.schemas(p.Service, p.Endpoint, nil, nil)
		props[p.Name] = presp
		if req == nil {
			req = preq
		}
	}
	resp := map[string]any{"type": "object", "properties": props}
	desc := "Calls " + partList(a.Parts) + " in parallel and merges the answers under the part names."
	if a.Partial == PartialAllow {
		desc += " Parts that fail are left out and named in the " + metadata.FailedParts + " header."
	} else {
		desc += " If a part fails, the request fails with its error."
	}
	ok := content("OK", "application/json", resp)
	ok["headers"] = map[string]any{metadata.FailedParts: map[string]any{
		"description": "The parts that failed, comma-separated.", "schema": map[string]any{"type": "string"},
	}}
	for _, m := range d.methods(h.pat) {
		op := map[string]any{
			"operationId": d.opID("", m, h.pat),
			"summary":     cmp.Or(a.Summary, "Aggregate of "+partList(a.Parts)),
			"description": cmp.Or(a.Description, desc),
			"tags":        []string{"aggregates"},
			"parameters":  d.parameters(h.pat, nil, req, m),
			"responses": map[string]any{
				"200":     ok,
				"default": content("Error", ProblemContentType, map[string]any{"$ref": componentPrefix + "Problem"}),
			},
		}
		if hasBody(m) {
			op["requestBody"] = requestBody(req)
		}
		d.secure(op, h.access)
		d.add(h.pat, m, op)
	}
}

func partList(parts []*Part) string {
	names := make([]string, len(parts))
	for i, p := range parts {
		names[i] = p.Service + " " + p.Endpoint
	}
	return strings.Join(names, ", ")
}

func (d *docBuilder) add(p *pattern, method string, op map[string]any) {
	path := docPath(p)
	if d.paths[path] == nil {
		d.paths[path] = map[string]any{}
	}
	d.paths[path][method] = op
}

var unsafeOpID = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// opID returns a unique operationId: the endpoint when it is a plain name,
// otherwise the method and path.
func (d *docBuilder) opID(endpoint, method string, p *pattern) string {
	base := endpoint
	if base == "" || strings.Contains(base, "{") {
		base = method + strings.Trim(unsafeOpID.ReplaceAllString(docPath(p), "_"), "_")
	}
	d.opIDs[base]++
	if n := d.opIDs[base]; n > 1 {
		return base + "_" + method + "_" + strings.Repeat("x", n-2) + "dup"
	}
	return base
}

// parameters documents the path wildcards (required) and, for methods without
// a body, the request's other fields as query parameters.
func (d *docBuilder) parameters(p *pattern, bodyParams []string, req map[string]any, method string) []any {
	props := d.properties(req)
	out := []any{}
	for _, name := range p.params {
		s := props[name]
		if s == nil {
			s = map[string]any{"type": "string"}
		}
		out = append(out, map[string]any{"name": name, "in": "path", "required": true, "schema": s})
	}
	if !hasBody(method) {
		for _, name := range slices.Sorted(maps.Keys(props)) {
			if p.has(name) {
				continue
			}
			out = append(out, map[string]any{"name": name, "in": "query", "required": false, "schema": props[name]})
		}
	}
	return out
}

// properties resolves an object schema's properties, following a top-level $ref.
func (d *docBuilder) properties(s map[string]any) map[string]any {
	for range 8 {
		ref, _ := s["$ref"].(string)
		name, ok := strings.CutPrefix(ref, componentPrefix)
		if !ok {
			break
		}
		next, _ := d.components[name].(map[string]any)
		if next == nil {
			return nil
		}
		s = next
	}
	props, _ := s["properties"].(map[string]any)
	return props
}

func hasBody(method string) bool {
	switch method {
	case "get", "head", "delete", "options", "trace":
		return false
	}
	return true
}

func requestBody(s map[string]any) map[string]any {
	return map[string]any{"required": false, "content": map[string]any{"application/json": map[string]any{"schema": s}}}
}

func content(desc, mediaType string, s map[string]any) map[string]any {
	return map[string]any{"description": desc, "content": map[string]any{mediaType: map[string]any{"schema": s}}}
}

// schemas returns the request and response schemas of an endpoint, with their
// named types moved into the document's components.
func (d *docBuilder) schemas(service, endpoint string, req, resp any) (map[string]any, map[string]any) {
	var reqText, respText string
	if t, ok := d.st.types[service+" "+endpoint]; ok {
		reqText, respText = typeSchema(t.request), typeSchema(t.response)
	}
	if req != nil {
		reqText = typeSchema(reflect.TypeOf(req))
	}
	if resp != nil {
		respText = typeSchema(reflect.TypeOf(resp))
	}
	if (reqText == "" || respText == "") && !strings.Contains(service+endpoint, "{") {
		if ep := d.st.endpoint(d.ctx, service, endpoint); ep != nil {
			reqText = cmp.Or(reqText, ep.Metadata[schema.RequestKey])
			respText = cmp.Or(respText, ep.Metadata[schema.ResponseKey])
		}
	}
	return d.hoist(reqText, service), d.hoist(respText, service)
}

func typeSchema(t reflect.Type) string {
	if t == nil {
		return ""
	}
	return schema.JSON(t)
}

// hoist parses a schema, moves its $defs into the components (renaming a
// definition whose name is taken by a different one) and points its
// references there. An unknown or unreadable schema is any object.
func (d *docBuilder) hoist(text, service string) map[string]any {
	var root map[string]any
	if text == "" || json.Unmarshal([]byte(text), &root) != nil {
		return map[string]any{"type": "object"}
	}
	defs, _ := root["$defs"].(map[string]any)
	delete(root, "$defs")
	rename := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(defs)) {
		target := name
		for i := 0; ; i++ {
			existing, taken := d.components[target]
			if !taken || sameJSON(existing, rewriteRefs(defs[name], rename, defs)) {
				break
			}
			target = unsafeOpID.ReplaceAllString(service, "_") + "." + name
			if i > 0 {
				target += "_" + strings.Repeat("x", i)
			}
		}
		rename[name] = target
	}
	for name, def := range defs {
		d.components[rename[name]] = rewriteRefs(def, rename, defs)
	}
	return rewriteRefs(root, rename, defs).(map[string]any)
}

// rewriteRefs returns v with "#/$defs/X" references pointing at the components.
func rewriteRefs(v any, rename map[string]string, defs map[string]any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, val := range t {
			if s, ok := val.(string); ok && k == "$ref" {
				if name, ok := strings.CutPrefix(s, schema.RefPrefix); ok {
					target := rename[name]
					if target == "" {
						target = name
					}
					out[k] = componentPrefix + target
					continue
				}
			}
			out[k] = rewriteRefs(val, rename, defs)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, val := range t {
			out[i] = rewriteRefs(val, rename, defs)
		}
		return out
	}
	return v
}

func sameJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// problemSchema describes the problem documents errors are answered with.
func problemSchema() map[string]any {
	str := map[string]any{"type": "string"}
	integer := map[string]any{"type": "integer"}
	return map[string]any{
		"type":        "object",
		"description": "An RFC 9457 problem document carrying the error envelope (id, code, detail).",
		"properties": map[string]any{
			"type": str, "title": str, "status": integer, "detail": str, "instance": str,
			"id": str, "code": integer, "request_id": str,
			"fields": map[string]any{"type": "array", "items": map[string]any{
				"type":       "object",
				"properties": map[string]any{"field": str, "detail": str},
			}},
		},
	}
}
