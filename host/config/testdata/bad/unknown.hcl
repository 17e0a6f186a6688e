# Unknown blocks and arguments at every level, and wrong labels.
name = "demo"

database "main" {}

service "greeter" {
  port = 8080
  address {}
}

service {}

registry "memory" {
  ttl = "30s"
}

broker "memory" {
  url = "nats://localhost"
}

transport "http" {
  pool = { max_open = 1 }
  tls {}
}

codec "json" {
  content_type = "application/json"
}

plugin "registry-consul" {
  version = "1.0.0"
  sha256  = "abc"
}

gateway "main" {}

telemetry {
  log {
    levle = "info"
  }
  profiling {}
}
