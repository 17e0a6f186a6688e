package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Defaults of the config block.
const (
	defaultName              = "microhost"
	defaultStream            = "MICRO"
	defaultAckWait           = 30 * time.Second
	defaultInactiveThreshold = time.Hour
	defaultReconnectWait     = 2 * time.Second
	defaultReconnectBuf      = 8 << 20 // bytes of publishes held while reconnecting
	defaultTimeout           = 5 * time.Second
)

// configSchema is the JSON Schema of the config block this plugin accepts; the
// host validates config against it before Configure.
const configSchema = `{
  "type": "object",
  "additionalProperties": false,
  "required": ["url"],
  "properties": {
    "url": {"type": "string", "minLength": 1, "description": "NATS server URL(s), comma-separated (nats://127.0.0.1:4222)"},
    "name": {"type": "string", "description": "connection name shown by the server (default microhost)"},
    "token": {"type": "string", "description": "authentication token"},
    "user": {"type": "string", "description": "user name; needs password"},
    "password": {"type": "string", "description": "password of user"},
    "timeout_ms": {"type": "integer", "minimum": 1, "maximum": 600000, "description": "connect, flush and JetStream API timeout in milliseconds (default 5000)"},
    "jetstream": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "enabled": {"type": "boolean", "description": "at-least-once delivery with acks and redelivery through a JetStream stream (default false: core NATS, at-most-once)"},
        "stream": {"type": "string", "pattern": "^[^.*>\\s]+$", "description": "stream name, created or updated at Configure (default MICRO)"},
        "subjects": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}, "description": "subjects the stream stores, e.g. [\"orders.>\"]; required when enabled"},
        "max_deliver": {"type": "integer", "minimum": -1, "not": {"const": 0}, "description": "deliveries of one message when a subscription sets no MaxAttempts (default 5; -1: unlimited)"},
        "ack_wait_ms": {"type": "integer", "minimum": 1, "description": "how long a delivery may stay unsettled before the server redelivers it, in milliseconds (default 30000)"},
        "inactive_threshold_ms": {"type": "integer", "minimum": 1, "description": "how long a consumer nobody pulls from survives, in milliseconds (default 3600000)"}
      },
      "if": {"properties": {"enabled": {"const": true}}, "required": ["enabled"]},
      "then": {"required": ["subjects"]}
    },
    "reconnect": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "max": {"type": "integer", "minimum": -1, "description": "reconnect attempts before giving up (default -1: forever)"},
        "wait_ms": {"type": "integer", "minimum": 1, "description": "pause between reconnect attempts in milliseconds (default 2000)"},
        "buffer_bytes": {"type": "integer", "minimum": -1, "description": "bytes of publishes buffered while reconnecting (default 8388608; -1: none, publishes fail at once)"}
      }
    }
  }
}`

// options are the broker's settings, from config or defaults.
type options struct {
	url, name             string
	token, user, password string
	timeout               time.Duration
	jetstream             bool
	stream                string
	subjects              []string
	maxDeliver            int
	ackWait               time.Duration
	inactiveThreshold     time.Duration
	reconnectMax          int
	reconnectWait         time.Duration
	reconnectBufSize      int
}

// defaultOptions are the settings of an empty config block but the url.
func defaultOptions() options {
	return options{
		name:              defaultName,
		timeout:           defaultTimeout,
		stream:            defaultStream,
		maxDeliver:        5,
		ackWait:           defaultAckWait,
		inactiveThreshold: defaultInactiveThreshold,
		reconnectMax:      -1,
		reconnectWait:     defaultReconnectWait,
		reconnectBufSize:  defaultReconnectBuf,
	}
}

// config is the config block as JSON; absent fields keep their defaults.
type config struct {
	URL       string `json:"url"`
	Name      string `json:"name"`
	Token     string `json:"token"`
	User      string `json:"user"`
	Password  string `json:"password"`
	TimeoutMS *int64 `json:"timeout_ms"`
	JetStream *struct {
		Enabled             bool     `json:"enabled"`
		Stream              string   `json:"stream"`
		Subjects            []string `json:"subjects"`
		MaxDeliver          *int     `json:"max_deliver"`
		AckWaitMS           *int64   `json:"ack_wait_ms"`
		InactiveThresholdMS *int64   `json:"inactive_threshold_ms"`
	} `json:"jetstream"`
	Reconnect *struct {
		Max         *int   `json:"max"`
		WaitMS      *int64 `json:"wait_ms"`
		BufferBytes *int   `json:"buffer_bytes"`
	} `json:"reconnect"`
}

// parseConfig decodes and checks a config block. The host has validated it
// against configSchema already; a config from elsewhere gets the same checks.
func parseConfig(raw json.RawMessage) (options, error) {
	o := defaultOptions()
	dec := json.NewDecoder(bytes.NewReader(bytes.TrimSpace(raw)))
	dec.DisallowUnknownFields()
	var c config
	if err := dec.Decode(&c); err != nil {
		return o, fmt.Errorf("broker nats config: %w (accepted: url, name, token, user, password, timeout_ms, jetstream, reconnect)", err)
	}
	if c.URL == "" {
		return o, fmt.Errorf("broker nats config: url is required, e.g. \"nats://127.0.0.1:4222\"")
	}
	o.url, o.token, o.user, o.password = c.URL, c.Token, c.User, c.Password
	if c.Name != "" {
		o.name = c.Name
	}
	if (c.User == "") != (c.Password == "") {
		return o, fmt.Errorf("broker nats config: user and password go together; set both or neither")
	}
	if c.TimeoutMS != nil {
		d, err := millis("timeout_ms", *c.TimeoutMS)
		if err != nil {
			return o, err
		}
		o.timeout = d
	}
	if js := c.JetStream; js != nil {
		o.jetstream = js.Enabled
		if js.Stream != "" {
			o.stream = js.Stream
		}
		o.subjects = js.Subjects
		if o.jetstream && len(o.subjects) == 0 {
			return o, fmt.Errorf("broker nats config: jetstream.subjects is required with jetstream enabled, e.g. [\"orders.>\"] (\">\" alone overlaps the JetStream API)")
		}
		if v := js.MaxDeliver; v != nil {
			if *v < -1 || *v == 0 {
				return o, fmt.Errorf("broker nats config: jetstream.max_deliver is %d; want -1 (unlimited) or at least 1", *v)
			}
			o.maxDeliver = *v
		}
		if v := js.AckWaitMS; v != nil {
			d, err := millis("jetstream.ack_wait_ms", *v)
			if err != nil {
				return o, err
			}
			o.ackWait = d
		}
		if v := js.InactiveThresholdMS; v != nil {
			d, err := millis("jetstream.inactive_threshold_ms", *v)
			if err != nil {
				return o, err
			}
			o.inactiveThreshold = d
		}
	}
	if r := c.Reconnect; r != nil {
		if v := r.Max; v != nil {
			if *v < -1 {
				return o, fmt.Errorf("broker nats config: reconnect.max is %d; want -1 (forever) or more", *v)
			}
			o.reconnectMax = *v
		}
		if v := r.WaitMS; v != nil {
			d, err := millis("reconnect.wait_ms", *v)
			if err != nil {
				return o, err
			}
			o.reconnectWait = d
		}
		if v := r.BufferBytes; v != nil {
			if *v < -1 {
				return o, fmt.Errorf("broker nats config: reconnect.buffer_bytes is %d; want -1 (none) or more", *v)
			}
			o.reconnectBufSize = *v
		}
	}
	return o, nil
}

// millis converts a positive count of milliseconds named field to a duration.
func millis(field string, ms int64) (time.Duration, error) {
	if ms < 1 || ms > int64(24*time.Hour/time.Millisecond)*365 {
		return 0, fmt.Errorf("broker nats config: %s is %d; want a positive number of milliseconds", field, ms)
	}
	return time.Duration(ms) * time.Millisecond, nil
}
