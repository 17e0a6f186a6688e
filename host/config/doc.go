// Package config reads micro.hcl, the one file that configures a Microhost host:
// its services, the registry, broker, transport and codecs (built in or served by
// plugins), the plugins themselves, the gateway, security and telemetry.
//
// Load and Parse decode the file with hcl/v2, resolve variables, env() calls and
// defaults, and validate everything at once: every problem is reported in one
// *Error, one line per diagnostic, "file:line:col: summary; detail", the detail
// saying what was expected. The Config holds resolved values (durations as
// time.Duration, sizes in bytes, plugin config as JSON) and the source ranges
// later checks point at, such as a plugin's config block when the schema the
// plugin's Describe returns rejects it (Plugin.ConfigDiagnostic).
//
// The file, every block optional:
//
//	variable "zone" {                    # var.zone; WithVars overrides it
//	  default     = "eu-1"               # without one, an override is required
//	  description = "Where we run."
//	}
//
//	service "greeter" {                  # any number, unique names
//	  version       = "1.0.0"            # default "latest"
//	  address       = "127.0.0.1:0"      # listen host:port (the default)
//	  advertise     = "10.0.0.5:8080"    # optional host:port others reach it at
//	  package       = "./cmd/greeter"    # a Go package micro run builds, or
//	  binary        = "./bin/greeter"    # a prebuilt binary; neither = embedded
//	  args          = ["-v"]
//	  env           = { KEY = "v" }
//	  metadata      = { zone = var.zone }
//	  ttl           = "30s"              # the default
//	  drain_timeout = "10s"              # the default
//	}
//
//	registry "memory" { selector = "round_robin" }  # at most one; or random, least_outstanding
//	broker "memory" {}                               # at most one
//	transport "http" {                               # at most one
//	  http2    = false
//	  max_body = "4MiB"                              # or a number of bytes
//	  pool {
//	    max_open     = 256
//	    max_idle     = 64
//	    wait_timeout = "5s"
//	    idle_timeout = "90s"
//	  }
//	}
//	codec "json" {}                                  # any number; the first is the default
//	codec "msgpack" {}
//
//	plugin "registry-consul" {           # "<kind>-<name>": registry "consul" uses it
//	  version    = "1.2.0"               # as micro.lock.hcl records it
//	  source     = "github.com/acme/micro-registry-consul@v1.2.0"
//	  gomaxprocs = 2                     # the process's GOMAXPROCS (default: half the host's, at least 1)
//	  config {                           # anything; sent to the plugin as JSON
//	    address = "127.0.0.1:8500"
//	    token   = env("CONSUL_TOKEN")
//	  }
//	}
//
//	gateway {                                        # at most one; see package gateway
//	  listen   = "127.0.0.1:8080"                    # the default
//	  max_body = "4MiB"                              # request body limit (the default)
//	  timeout  = "10s"                               # per-route default (the default)
//	  auth     = false                               # routes need a bearer token (default false)
//	  tls {                                          # serve HTTPS (files reloaded when they change)
//	    cert_file = "gateway.crt"
//	    key_file  = "gateway.key"
//	  }
//	  cors { allow_origins = ["https://app.example.com", "*.example.com"] }
//	  breaker {                                      # per backend service
//	    failures           = 5                       # consecutive, to open (the default)
//	    open_timeout       = "30s"                   # the default
//	    half_open_requests = 1                       # the default
//	  }
//	  docs { title = "My API" }                      # also version, disabled
//	  backend "greeter" {                            # per-service policy
//	    block          = ["Greeter.Admin*"]           # or allow = [...]
//	    blocked_status = 404                         # 403 (the default) or 404
//	  }
//	  route "GET /greet/{name}" {                    # a ServeMux pattern
//	    service  = "greeter"
//	    endpoint = "Greeter.Hello"
//	    timeout  = "2s"
//	    auth           = true                        # overrides the gateway's auth
//	    required_roles = ["admin", "ops"]            # from security.jwt's roles_claim
//	    roles_match    = "all"                       # or "any" (the default)
//	    retry {                                      # also backoff, max_backoff,
//	      attempts        = 2                        # non_idempotent
//	      per_try_timeout = "500ms"
//	    }
//	    cors { allow_origins = ["*"] }               # replaces the global policy
//	    transform {
//	      add    = { source = "gateway" }
//	      remove = ["internal"]
//	      rename = { message = "greeting" }
//	    }
//	  }
//	  aggregate "GET /dashboard/{name}" {
//	    timeout = "1s"
//	    partial = "partial"                          # or "fail" (the default)
//	    part "greeting" {
//	      service  = "greeter"
//	      endpoint = "Greeter.Hello"
//	    }
//	  }
//	}
//	security {                                       # at most one; see package sdk/auth
//	  realm = "microhost"                            # named in WWW-Authenticate (the default)
//	  jwt {                                          # which bearer tokens are valid
//	    issuer       = "https://login.example.com"
//	    audience     = ["orders-api"]
//	    leeway       = "30s"
//	    roles_claim  = "realm_access.roles"          # dotted path; default "roles"
//	    scopes_claim = "scope"                       # the default
//	    key {                                        # any number; one of secret,
//	      id         = "2024-01"                     # secret_file, pem, file
//	      file       = "jwt.pub"
//	      algorithms = ["RS256"]
//	    }
//	    jwks { url = "https://login.example.com/certs" } # also refresh_interval,
//	  }                                              # min_refresh_interval, timeout, algorithms
//	  internal {                                     # tokens forwarding a verified caller
//	    ttl = "1m"                                   # the default; also issuer, leeway
//	    key { secret_file = "internal.key" }         # to accept them
//	    signing { secret_file = "internal.key" }     # to mint them (gateway, callers)
//	  }
//	  tls {                                          # the http transport serves and dials TLS
//	    cert_file           = "tls.crt"              # files are re-read when they change
//	    key_file            = "tls.key"
//	    ca_file             = "ca.crt"               # verifies servers; without
//	    client_ca_file      = "clients-ca.crt"       # client_ca_file, admits clients too
//	    require_client_cert = true                   # mutual TLS
//	    server_name         = "orders.internal"      # also poll_interval
//	  }
//	  rbac {
//	    roles    = { reader = ["orders:read"], admin = ["orders:*"] }
//	    bindings = { "spiffe://prod/billing" = ["reader"] }
//	    guard "Orders.Delete" {                      # "Handler.Method", "Handler.*" or "*"
//	      roles       = ["admin"]
//	      permissions = ["orders:delete"]
//	      match       = "any"                        # or "all"; public = true admits anyone
//	    }
//	  }
//	}
//	telemetry {
//	  log {
//	    level  = "info"                              # trace, debug, info, warn, error
//	    format = "auto"                              # auto, text, json
//	    levels = { gateway = "debug", plugin = "warn" } # per component or service
//	  }
//	  metrics {                                      # on without the block too
//	    listen   = "127.0.0.1:9100"                  # besides the gateway's /metrics
//	    path     = "/metrics"                        # the default; also disabled
//	  }
//	  tracing {                                      # no block: no spans
//	    exporter        = "otlp_grpc"                # the default; otlp_http, stdout
//	    endpoint        = "otel-collector:4317"      # otlp_http: host:port or a URL
//	    insecure        = true                       # no TLS
//	    headers         = { "x-api-key" = env("OTLP_KEY") }
//	    timeout         = "10s"                      # per export (the default)
//	    sampler         = "parentbased_traceidratio" # OTEL_TRACES_SAMPLER names;
//	    ratio           = 0.1                        # default parentbased_always_on
//	    service_name    = "shop"                     # default "microhost"
//	    service_version = "1.4.0"
//	    attributes      = { "deployment.environment" = "prod" } # host.name is set
//	  }
//	}
//
// Registry, broker, transport and codec labels name a built-in (memory; memory;
// http; json, msgpack) or a plugin, which then needs its plugin block; a plugin
// block of the same kind and name also replaces a built-in. Expressions may use
// var.<name>, env("NAME") or env("NAME", "default"), and format, join, lower,
// trimspace and upper.
//
// File paths in the security block are relative to micro.hcl's directory.
// Parse checks their shape; Security.Check loads them, as start-up does.
//
// With no micro.hcl, `micro run` uses Default, decoded from the embedded
// default.hcl (DefaultSource).
package config
