package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// defaultDeregisterAfter is how long Consul keeps an instance whose checks are
// critical (e.g. its TTL lapsed) before removing it; Consul's minimum is 1m.
const defaultDeregisterAfter = "1m"

// configSchema is the JSON Schema of the config block this plugin accepts; the
// host validates config against it before Configure.
const configSchema = `{
  "type": "object",
  "additionalProperties": false,
  "required": ["address"],
  "properties": {
    "address": {"type": "string", "minLength": 1, "description": "Consul agent HTTP address: host:port, or http://, https:// or unix:// URL (e.g. 127.0.0.1:8500)"},
    "token": {"type": "string", "description": "ACL token"},
    "datacenter": {"type": "string", "description": "datacenter to query (default: the agent's)"},
    "namespace": {"type": "string", "description": "namespace (Consul Enterprise)"},
    "partition": {"type": "string", "description": "admin partition (Consul Enterprise)"},
    "ttl_check": {"type": "boolean", "description": "give each instance registered with a TTL a Consul TTL check that the plugin keeps passing while the registration lives (default true); without it instances never expire"},
    "http_check_path": {"type": "string", "pattern": "^/", "description": "if set, Consul also checks each instance with GET http://<address><path> every 10s"},
    "deregister_critical_after": {"type": "string", "pattern": "^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$", "description": "Go duration after which Consul removes an instance whose checks stay critical (default 1m; Consul's minimum is 1m)"}
  }
}`

// options are the registry's settings, from config or defaults.
type options struct {
	address, token                   string
	datacenter, namespace, partition string
	ttlCheck                         bool
	httpCheckPath                    string
	deregisterAfter                  string // a Consul duration string
}

// config is the config block as JSON; absent fields keep their defaults.
type config struct {
	Address                 string `json:"address"`
	Token                   string `json:"token"`
	Datacenter              string `json:"datacenter"`
	Namespace               string `json:"namespace"`
	Partition               string `json:"partition"`
	TTLCheck                *bool  `json:"ttl_check"`
	HTTPCheckPath           string `json:"http_check_path"`
	DeregisterCriticalAfter string `json:"deregister_critical_after"`
}

// parseConfig decodes raw strictly and applies defaults. The host validated raw
// against configSchema already; the checks here keep in-process use honest too.
func parseConfig(raw json.RawMessage) (options, error) {
	var c config
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return options{}, fmt.Errorf("config: %w", err)
	}
	if c.Address == "" {
		return options{}, fmt.Errorf("config: address is required (e.g. \"127.0.0.1:8500\")")
	}
	o := options{
		address:         c.Address,
		token:           c.Token,
		datacenter:      c.Datacenter,
		namespace:       c.Namespace,
		partition:       c.Partition,
		ttlCheck:        c.TTLCheck == nil || *c.TTLCheck,
		httpCheckPath:   c.HTTPCheckPath,
		deregisterAfter: defaultDeregisterAfter,
	}
	if c.HTTPCheckPath != "" && c.HTTPCheckPath[0] != '/' {
		return options{}, fmt.Errorf("config: http_check_path %q must start with /", c.HTTPCheckPath)
	}
	if c.DeregisterCriticalAfter != "" {
		d, err := time.ParseDuration(c.DeregisterCriticalAfter)
		if err != nil || d <= 0 {
			return options{}, fmt.Errorf("config: deregister_critical_after %q is not a positive duration like \"90s\"", c.DeregisterCriticalAfter)
		}
		o.deregisterAfter = d.String()
	}
	return o, nil
}
