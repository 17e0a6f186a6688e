package schema_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/microhost/micro/sdk/schema"
)

type Inner struct {
	Note string `json:"note"`
}

type Base struct {
	Created time.Time `json:"created"`
}

type Node struct {
	Base
	Name     string            `json:"name"`
	Count    int32             `json:"count,omitempty"`
	Ratio    float64           `json:"ratio"`
	Ok       bool              `json:"ok"`
	Tags     []string          `json:"tags"`
	Labels   map[string]int    `json:"labels"`
	Blob     []byte            `json:"blob"`
	Inner    *Inner            `json:"inner"`
	Children []*Node           `json:"children"`
	Raw      json.RawMessage   `json:"raw"`
	Any      any               `json:"any"`
	Skipped  string            `json:"-"`
	ByName   string            // no tag: the Go name
	hidden   string            //nolint:unused // unexported: left out
	Nested   map[string]*Inner `json:"nested"`
}

func TestFor(t *testing.T) {
	got, err := json.Marshal(schema.For(&Node{}))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"$defs":{"Inner":{"properties":{"note":{"type":"string"}},"type":"object"},` +
		`"Node":{"properties":{"ByName":{"type":"string"},"any":{},"blob":{"contentEncoding":"base64","type":"string"},` +
		`"children":{"items":{"$ref":"#/$defs/Node"},"type":"array"},"count":{"format":"int32","type":"integer"},` +
		`"created":{"format":"date-time","type":"string"},"inner":{"$ref":"#/$defs/Inner"},` +
		`"labels":{"additionalProperties":{"format":"int64","type":"integer"},"type":"object"},` +
		`"name":{"type":"string"},"nested":{"additionalProperties":{"$ref":"#/$defs/Inner"},"type":"object"},` +
		`"ok":{"type":"boolean"},"ratio":{"format":"double","type":"number"},"raw":{},` +
		`"tags":{"items":{"type":"string"},"type":"array"}},"type":"object"}},"$ref":"#/$defs/Node"}`
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if s := schema.JSON(42); s != `{"format":"int64","type":"integer"}` {
		t.Errorf("int: %s", s)
	}
}

// TestForMatchesEncodingJSON checks the schema describes what encoding/json
// writes for the cases it treats specially: [N]byte is an array of numbers
// (only []byte is base64), and ",string" quotes numbers but not slices.
func TestForMatchesEncodingJSON(t *testing.T) {
	type special struct {
		Hash  [4]byte  `json:"hash"`
		ID    int64    `json:"id,string"`
		Names []string `json:"names,string"`
	}
	got, err := json.Marshal(schema.For(special{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"hash":{"items":{"minimum":0,"type":"integer"},"type":"array"}`,
		`"id":{"type":"string"}`,
		`"names":{"items":{"type":"string"},"type":"array"}`,
	} {
		if !strings.Contains(string(got), want) {
			t.Errorf("schema %s lacks %s", got, want)
		}
	}
}
