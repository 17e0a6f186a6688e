# The embedded default: what `micro run` starts when there is no micro.hcl.
# Everything is built in, so it runs with nothing installed.

# One demo service, embedded in the host (no package or binary to run).
service "helloworld" {
  version = "latest"
  address = "127.0.0.1:0"
}

registry "memory" {
  selector = "round_robin"
}

broker "memory" {}

transport "http" {
  http2    = false
  max_body = "4MiB"
}

# The first codec is the default.
codec "json" {}
codec "msgpack" {}

telemetry {
  log {
    level  = "info"
    format = "auto"
  }
}
