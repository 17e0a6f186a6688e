package plugins

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// validateConfig checks config against the JSON Schema a plugin's Describe
// returned; an empty schema accepts any object.
func validateConfig(id, schema string, config []byte) error {
	if strings.TrimSpace(schema) == "" {
		return nil
	}
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schema))
	if err != nil {
		return fmt.Errorf("plugin %s publishes an unreadable config schema (%v): report it to the plugin's author", id, err)
	}
	c := jsonschema.NewCompiler()
	url := "micro://" + id + "/config.schema.json"
	if err := c.AddResource(url, doc); err != nil {
		return fmt.Errorf("plugin %s publishes an invalid config schema: %w", id, err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		return fmt.Errorf("plugin %s publishes an invalid config schema: %w", id, err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(config))
	if err != nil {
		return fmt.Errorf("plugin %s: its config is not valid JSON: %w", id, err)
	}
	if err := sch.Validate(v); err != nil {
		return fmt.Errorf("plugin %s rejected its config: %v; fix the plugin %q config block to match the plugin's schema", id, err, id)
	}
	return nil
}
