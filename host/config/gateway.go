package config

import (
	"encoding/json"
	stderrors "errors"
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/microhost/micro/gateway"
)

// The schemas of the gateway block and what nests in it.
var (
	gatewaySchema = bodySchema{
		attrs: []string{"listen", "max_body", "timeout", "auth"},
		blocks: []blockSpec{
			{typ: "cors"}, {typ: "breaker"}, {typ: "docs"}, {typ: "tls"},
			{typ: "backend", label: "service"}, {typ: "route", label: "pattern"}, {typ: "aggregate", label: "pattern"},
		},
	}
	corsSchema = bodySchema{attrs: []string{
		"allow_origins", "allow_methods", "allow_headers", "expose_headers", "allow_credentials", "max_age",
	}}
	breakerSchema = bodySchema{attrs: []string{"disabled", "failures", "open_timeout", "half_open_requests"}}
	docsSchema    = bodySchema{attrs: []string{"disabled", "title", "version"}}
	backendSchema = bodySchema{attrs: []string{"allow", "block", "blocked_status"}, blocks: []blockSpec{{typ: "breaker"}}}
	routeSchema   = bodySchema{
		attrs:  []string{"service", "endpoint", "timeout", "summary", "description", "auth", "required_roles", "roles_match"},
		blocks: []blockSpec{{typ: "retry"}, {typ: "cors"}, {typ: "transform"}},
	}
	retrySchema     = bodySchema{attrs: []string{"attempts", "per_try_timeout", "backoff", "max_backoff", "non_idempotent"}}
	transformSchema = bodySchema{attrs: []string{"add", "remove", "rename"}}
	aggregateSchema = bodySchema{
		attrs:  []string{"timeout", "partial", "summary", "description", "auth", "required_roles", "roles_match"},
		blocks: []blockSpec{{typ: "part", label: "name"}, {typ: "cors"}},
	}
	partSchema = bodySchema{attrs: []string{"service", "endpoint", "timeout"}, blocks: []blockSpec{{typ: "retry"}}}
)

// decodeGateway decodes the gateway block, then has the gateway validate the
// result, reporting its findings at the attribute or block they concern. sec
// is the security block, which routes that need auth depend on.
func (d *decoder) decodeGateway(b *hclsyntax.Block, sec *Security) *Gateway {
	if b == nil {
		return nil
	}
	attrs, blocks := d.content(b.Body, gatewaySchema)
	g := &Gateway{Config: gateway.Config{Listen: DefaultGatewayListen}, Range: b.DefRange(), ListenRange: b.DefRange()}
	if a := attrs["listen"]; a != nil {
		g.ListenRange = a.SrcRange
		if v, ok := d.address(a, listenAddr); ok {
			g.Listen = v
		}
	}
	if a := attrs["max_body"]; a != nil {
		g.MaxBody, _ = d.size(a)
	}
	if a := attrs["timeout"]; a != nil {
		g.Timeout, _ = d.duration(a, false)
	}
	if a := attrs["auth"]; a != nil {
		g.Auth, _ = d.boolean(a)
	}
	all := byType(blocks)
	if tb := d.single(all["tls"]); tb != nil {
		g.TLS, g.tlsFiles = d.decodeTLSFiles(tb, "the gateway serves HTTPS with this certificate")
		g.TLSRange = tb.DefRange()
	}
	if cb := d.single(all["cors"]); cb != nil {
		g.CORS = d.decodeCORS(cb)
	}
	if bb := d.single(all["breaker"]); bb != nil {
		g.Breaker = *d.decodeBreaker(bb)
	}
	if db := d.single(all["docs"]); db != nil {
		attrs, _ := d.content(db.Body, docsSchema)
		if a := attrs["disabled"]; a != nil {
			g.Docs.Disabled, _ = d.boolean(a)
		}
		if a := attrs["title"]; a != nil {
			g.Docs.Title, _ = d.str(a)
		}
		if a := attrs["version"]; a != nil {
			g.Docs.Version, _ = d.str(a)
		}
	}
	src := gatewaySource{gateway: b}
	for _, bb := range all["backend"] {
		g.Backends = append(g.Backends, d.decodeBackend(bb))
		src.backends = append(src.backends, bb)
	}
	for _, rb := range all["route"] {
		g.Routes = append(g.Routes, d.decodeRoute(rb))
		src.routes = append(src.routes, rb)
	}
	for _, ab := range all["aggregate"] {
		g.Aggregates = append(g.Aggregates, d.decodeAggregate(ab))
		src.aggregates = append(src.aggregates, ab)
	}
	g.Targets = d.targets
	d.gatewayDiagnostics(g.Config.Validate(), src)
	d.checkGatewayAuth(g, src, attrs["auth"], sec)
	return g
}

// gatewaySource keeps the blocks the gateway config came from, to locate
// the gateway's validation errors.
type gatewaySource struct {
	gateway    *hclsyntax.Block
	backends   []*hclsyntax.Block
	routes     []*hclsyntax.Block
	aggregates []*hclsyntax.Block
}

// gatewayDiagnostics reports each *gateway.FieldError at the attribute (or,
// failing that, the block) it names.
func (d *decoder) gatewayDiagnostics(err error, src gatewaySource) {
	if err == nil {
		return
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		var fe *gateway.FieldError
		if !stderrors.As(e, &fe) {
			d.errorf(src.gateway.DefRange(), "Invalid gateway configuration", "%v", e)
			continue
		}
		block := src.gateway
		what := "gateway"
		switch fe.Kind {
		case "backend":
			block, what = src.backends[fe.Index], fmt.Sprintf("backend %q", label(src.backends[fe.Index]))
		case "route":
			block, what = src.routes[fe.Index], fmt.Sprintf("route %q", label(src.routes[fe.Index]))
		case "aggregate":
			block, what = src.aggregates[fe.Index], fmt.Sprintf("aggregate %q", label(src.aggregates[fe.Index]))
			if fe.Part >= 0 {
				parts := byType(block.Body.Blocks)["part"]
				if fe.Part < len(parts) {
					block, what = parts[fe.Part], what+fmt.Sprintf(" part %q", label(parts[fe.Part]))
				}
			}
		}
		field := fe.Field
		if (field == "service" || field == "endpoint") && fe.Kind != "backend" && block.Body.Attributes[field] == nil {
			continue // reported as missing already
		}
		if field == "pattern" || field == "name" || field == "service" && fe.Kind == "backend" {
			d.errorf(block.LabelRanges[0], fmt.Sprintf("Invalid %s", what), "%v", fe.Err)
			continue
		}
		rng := locate(block, field)
		d.errorf(rng, fmt.Sprintf("Invalid value for %q in %s", field, what), "%v", fe.Err)
	}
}

// locate finds the range of a dotted field ("cors.allow_origins") in block:
// the attribute's value, else the innermost nested block found, else block.
func locate(block *hclsyntax.Block, field string) hcl.Range {
	rng := block.DefRange()
	body := block.Body
	parts := strings.Split(field, ".")
	for i, p := range parts {
		if a := body.Attributes[p]; a != nil && i == len(parts)-1 {
			return a.Expr.Range()
		}
		var next *hclsyntax.Block
		for _, nb := range body.Blocks {
			if nb.Type == p {
				next = nb
				break
			}
		}
		if next == nil {
			return rng
		}
		rng, body = next.DefRange(), next.Body
	}
	return rng
}

func (d *decoder) decodeCORS(b *hclsyntax.Block) *gateway.CORS {
	attrs, _ := d.content(b.Body, corsSchema)
	c := &gateway.CORS{}
	if a := attrs["allow_origins"]; a != nil {
		c.AllowOrigins, _ = d.stringList(a)
	}
	if a := attrs["allow_methods"]; a != nil {
		c.AllowMethods, _ = d.stringList(a)
	}
	if a := attrs["allow_headers"]; a != nil {
		c.AllowHeaders, _ = d.stringList(a)
	}
	if a := attrs["expose_headers"]; a != nil {
		c.ExposeHeaders, _ = d.stringList(a)
	}
	if a := attrs["allow_credentials"]; a != nil {
		c.AllowCredentials, _ = d.boolean(a)
	}
	if a := attrs["max_age"]; a != nil {
		c.MaxAge, _ = d.duration(a, true)
	}
	return c
}

func (d *decoder) decodeBreaker(b *hclsyntax.Block) *gateway.Breaker {
	attrs, _ := d.content(b.Body, breakerSchema)
	br := &gateway.Breaker{}
	if a := attrs["disabled"]; a != nil {
		br.Disabled, _ = d.boolean(a)
	}
	if a := attrs["failures"]; a != nil {
		n, _ := d.integer(a, 1)
		br.Failures = uint32(n)
	}
	if a := attrs["open_timeout"]; a != nil {
		br.OpenTimeout, _ = d.duration(a, false)
	}
	if a := attrs["half_open_requests"]; a != nil {
		n, _ := d.integer(a, 1)
		br.HalfOpenRequests = uint32(n)
	}
	return br
}

func (d *decoder) decodeBackend(b *hclsyntax.Block) *gateway.Backend {
	attrs, blocks := d.content(b.Body, backendSchema)
	be := &gateway.Backend{Service: label(b)}
	if a := attrs["allow"]; a != nil {
		be.Allow, _ = d.stringList(a)
	}
	if a := attrs["block"]; a != nil {
		be.Block, _ = d.stringList(a)
	}
	if a := attrs["blocked_status"]; a != nil {
		be.BlockedStatus, _ = d.integer(a, 0)
	}
	if bb := d.single(byType(blocks)["breaker"]); bb != nil {
		be.Breaker = d.decodeBreaker(bb)
	}
	return be
}

func (d *decoder) decodeRetry(b *hclsyntax.Block) *gateway.Retry {
	attrs, _ := d.content(b.Body, retrySchema)
	r := &gateway.Retry{}
	if a := attrs["attempts"]; a != nil {
		r.Attempts, _ = d.integer(a, 0)
	}
	if a := attrs["per_try_timeout"]; a != nil {
		r.PerTryTimeout, _ = d.duration(a, false)
	}
	if a := attrs["backoff"]; a != nil {
		r.Backoff, _ = d.duration(a, false)
	}
	if a := attrs["max_backoff"]; a != nil {
		r.MaxBackoff, _ = d.duration(a, false)
	}
	if a := attrs["non_idempotent"]; a != nil {
		r.NonIdempotent, _ = d.boolean(a)
	}
	return r
}

func (d *decoder) decodeRoute(b *hclsyntax.Block) *gateway.Route {
	attrs, blocks := d.content(b.Body, routeSchema)
	r := &gateway.Route{Pattern: label(b)}
	d.target(b, attrs, &r.Service, &r.Endpoint)
	if a := attrs["timeout"]; a != nil {
		r.Timeout, _ = d.duration(a, false)
	}
	if a := attrs["summary"]; a != nil {
		r.Summary, _ = d.str(a)
	}
	if a := attrs["description"]; a != nil {
		r.Description, _ = d.str(a)
	}
	r.Access = d.decodeAccess(attrs)
	all := byType(blocks)
	if rb := d.single(all["retry"]); rb != nil {
		r.Retry = d.decodeRetry(rb)
	}
	if cb := d.single(all["cors"]); cb != nil {
		r.CORS = d.decodeCORS(cb)
	}
	if tb := d.single(all["transform"]); tb != nil {
		r.Transform = d.decodeTransform(tb)
	}
	return r
}

// target decodes service and endpoint, both required, and records the pair
// as one of the gateway's Targets.
func (d *decoder) target(b *hclsyntax.Block, attrs map[string]*hclsyntax.Attribute, service, endpoint *string) {
	t := Target{From: fmt.Sprintf("%s %q", b.Type, label(b))}
	for _, f := range []struct {
		name, example string
		dst           *string
		rng           *hcl.Range
	}{{"service", `service = "greeter"`, service, &t.ServiceRange}, {"endpoint", `endpoint = "Greeter.Hello"`, endpoint, &t.EndpointRange}} {
		a := attrs[f.name]
		if a == nil {
			d.errorf(b.DefRange(), fmt.Sprintf("Missing %s for %s %q", f.name, b.Type, label(b)), "expected %s in the block", f.example)
			continue
		}
		*f.dst, _ = d.str(a)
		*f.rng = a.Expr.Range()
	}
	if *service != "" {
		t.Service, t.Endpoint = *service, *endpoint
		d.targets = append(d.targets, t)
	}
}

func (d *decoder) decodeTransform(b *hclsyntax.Block) *gateway.Transform {
	attrs, _ := d.content(b.Body, transformSchema)
	t := &gateway.Transform{}
	if a := attrs["remove"]; a != nil {
		t.Remove, _ = d.stringList(a)
	}
	if a := attrs["rename"]; a != nil {
		t.Rename, _ = d.stringMap(a, nil)
	}
	if a := attrs["add"]; a != nil {
		v, ok := d.eval(a.Expr)
		switch {
		case !ok || v.IsNull():
		case !v.Type().IsObjectType() && !v.Type().IsMapType():
			d.errorf(a.Expr.Range(), invalid(a), `expected a map of field names to values, such as { source = "gateway" }, got %s`, typeDesc(v))
		case !v.IsWhollyKnown():
		default:
			t.Add = map[string]json.RawMessage{}
			for it := v.ElementIterator(); it.Next(); {
				k, e := it.Element()
				raw, err := ctyjson.Marshal(e, e.Type())
				if err != nil {
					d.errorf(a.Expr.Range(), invalid(a), "the value of %q cannot be written as JSON: %v", k.AsString(), err)
					continue
				}
				t.Add[k.AsString()] = raw
			}
		}
	}
	return t
}

func (d *decoder) decodeAggregate(b *hclsyntax.Block) *gateway.Aggregate {
	attrs, blocks := d.content(b.Body, aggregateSchema)
	ag := &gateway.Aggregate{Pattern: label(b)}
	if a := attrs["timeout"]; a != nil {
		ag.Timeout, _ = d.duration(a, false)
	}
	if a := attrs["partial"]; a != nil {
		ag.Partial, _ = d.str(a)
	}
	if a := attrs["summary"]; a != nil {
		ag.Summary, _ = d.str(a)
	}
	if a := attrs["description"]; a != nil {
		ag.Description, _ = d.str(a)
	}
	ag.Access = d.decodeAccess(attrs)
	all := byType(blocks)
	if cb := d.single(all["cors"]); cb != nil {
		ag.CORS = d.decodeCORS(cb)
	}
	for _, pb := range all["part"] {
		pattrs, pblocks := d.content(pb.Body, partSchema)
		p := &gateway.Part{Name: label(pb)}
		d.target(pb, pattrs, &p.Service, &p.Endpoint)
		if a := pattrs["timeout"]; a != nil {
			p.Timeout, _ = d.duration(a, false)
		}
		if rb := d.single(byType(pblocks)["retry"]); rb != nil {
			p.Retry = d.decodeRetry(rb)
		}
		ag.Parts = append(ag.Parts, p)
	}
	return ag
}

// decodeAccess decodes a route's or aggregate's auth, required_roles and roles_match.
func (d *decoder) decodeAccess(attrs map[string]*hclsyntax.Attribute) gateway.Access {
	var ac gateway.Access
	if a := attrs["auth"]; a != nil {
		if v, ok := d.boolean(a); ok {
			ac.Auth = &v
		}
	}
	if a := attrs["required_roles"]; a != nil {
		ac.RequiredRoles, _ = d.stringList(a)
	}
	if a := attrs["roles_match"]; a != nil {
		ac.RolesMatch, _ = d.str(a)
	}
	return ac
}

// checkGatewayAuth reports routes that need authenticated callers when the
// security block has no jwt block to verify their tokens with, at the setting
// that asks for auth. def is the gateway's own auth attribute.
func (d *decoder) checkGatewayAuth(g *Gateway, src gatewaySource, def *hclsyntax.Attribute, sec *Security) {
	hasJWT := sec != nil && sec.JWT != nil
	signs := sec != nil && sec.Internal != nil && sec.Internal.Signing != nil
	const expected = `expected a security { jwt { ... } } block saying which bearer tokens are valid, or auth = false`
	const expectedForRoles = `expected a security { jwt { ... } } block saying which bearer tokens are valid; required_roles need an authenticated caller`
	needs := false
	check := func(block *hclsyntax.Block, what string, ac gateway.Access) {
		// required_roles imply auth, as in the gateway itself.
		on := g.Auth || len(ac.RequiredRoles) > 0
		if ac.Auth != nil {
			on = *ac.Auth
		}
		if !on {
			return // required_roles with auth = false is reported by the gateway's validation
		}
		needs = true
		if hasJWT {
			return
		}
		// Report at what asks for auth; a route that inherits it is covered by
		// the gateway's own auth attribute.
		switch a := block.Body.Attributes; {
		case len(ac.RequiredRoles) > 0:
			d.errorf(a["required_roles"].NameRange, fmt.Sprintf("No token verifier for %s", what), "%s", expectedForRoles)
		case ac.Auth != nil:
			d.errorf(a["auth"].NameRange, fmt.Sprintf("No token verifier for %s", what), "%s", expected)
		}
	}
	for i, r := range g.Routes {
		check(src.routes[i], fmt.Sprintf("route %q", r.Pattern), r.Access)
	}
	for i, ag := range g.Aggregates {
		check(src.aggregates[i], fmt.Sprintf("aggregate %q", ag.Pattern), ag.Access)
	}
	if g.Auth && !hasJWT && def != nil {
		d.errorf(def.NameRange, "No token verifier for the gateway", "%s", expected)
	}
	if needs && hasJWT && !signs {
		d.warnf(src.gateway.DefRange(), "Callers are not forwarded to backends",
			"routes authenticate callers, but security.internal has no signing key, so backends get the client's token but no verified caller; expected security { internal { signing { ... } } } with the services holding the matching key")
	}
}
