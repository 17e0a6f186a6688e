package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Defaults of the config block.
const (
	defaultMaxBodyBytes = 4 << 20 // as the built-in http transport
	defaultMaxConns     = 4
	defaultDialTimeout  = 5 * time.Second
)

// configSchema is the JSON Schema of the config block this plugin accepts; the
// host validates config against it before Configure.
const configSchema = `{
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "max_body_bytes": {"type": "integer", "minimum": 1, "maximum": 4294967295, "description": "largest request, response or stream message body accepted, in bytes (default 4194304); larger requests are answered with 413"},
    "max_conns": {"type": "integer", "minimum": 1, "maximum": 1024, "description": "WebSocket connections kept per remote address, opened as calls need them; calls and streams share them (default 4)"},
    "dial_timeout_ms": {"type": "integer", "minimum": 1, "maximum": 600000, "description": "how long opening a WebSocket connection may take, in milliseconds (default 5000)"}
  }
}`

// options are the transport's settings, from config or defaults.
type options struct {
	maxBodyBytes int64
	maxConns     int
	dialTimeout  time.Duration
}

func defaultOptions() options {
	return options{maxBodyBytes: defaultMaxBodyBytes, maxConns: defaultMaxConns, dialTimeout: defaultDialTimeout}
}

// config is the config block as JSON; absent fields keep their defaults.
type config struct {
	MaxBodyBytes  *int64 `json:"max_body_bytes"`
	MaxConns      *int   `json:"max_conns"`
	DialTimeoutMS *int64 `json:"dial_timeout_ms"`
}

// parseConfig decodes and checks a config block (the host has validated it
// against configSchema already; a config from elsewhere gets the same checks).
func parseConfig(raw json.RawMessage) (options, error) {
	o := defaultOptions()
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return o, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var c config
	if err := dec.Decode(&c); err != nil {
		return o, fmt.Errorf("transport ws config: %w (accepted: max_body_bytes, max_conns, dial_timeout_ms)", err)
	}
	if v := c.MaxBodyBytes; v != nil {
		if *v < 1 || *v > math.MaxUint32 {
			return o, fmt.Errorf("transport ws config: max_body_bytes is %d; want 1 to %d", *v, uint64(math.MaxUint32))
		}
		o.maxBodyBytes = *v
	}
	if v := c.MaxConns; v != nil {
		if *v < 1 || *v > 1024 {
			return o, fmt.Errorf("transport ws config: max_conns is %d; want 1 to 1024", *v)
		}
		o.maxConns = *v
	}
	if v := c.DialTimeoutMS; v != nil {
		if *v < 1 || *v > 600000 {
			return o, fmt.Errorf("transport ws config: dial_timeout_ms is %d; want 1 to 600000", *v)
		}
		o.dialTimeout = time.Duration(*v) * time.Millisecond
	}
	return o, nil
}
