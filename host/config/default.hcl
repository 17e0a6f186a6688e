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

# The API gateway in front of it:
#   curl http://127.0.0.1:8080/hello/Alice
#   curl -d '{"name":"Bob"}' http://127.0.0.1:8080/hello
# API docs at http://127.0.0.1:8080/api/docs, metrics at /metrics.
gateway {
  listen = "127.0.0.1:8080"

  route "GET /hello/{name}" {
    service  = "helloworld"
    endpoint = "Greeter.Hello"
    summary  = "Greet someone by name"
  }

  route "POST /hello" {
    service  = "helloworld"
    endpoint = "Greeter.Hello"
    summary  = "Greet the name in the body"
  }
}

telemetry {
  log {
    level  = "info"
    format = "auto"
  }
}
