# Every block, with values that differ from the defaults.
variable "zone" {
  default     = "eu-1"
  description = "Where the services run."
}

service "greeter" {
  version       = "1.0.0"
  address       = "127.0.0.1:9090"
  advertise     = "10.0.0.5:9090"
  package       = "./examples/helloworld"
  args          = ["-verbose", "--name=greeter"]
  env           = { GREETING = "hello", LEVEL = 3 }
  metadata      = { zone = var.zone, tier = "edge" }
  ttl           = "1m"
  drain_timeout = "0s"
}

service "billing" {
  binary    = "./bin/billing"
  address   = ":0"
  advertise = ""
}

# Embedded: neither package nor binary.
service "audit" {}

registry "consul" {
  selector = "least_outstanding"
}

broker "memory" {}

transport "http" {
  http2    = true
  max_body = "512KiB"
  pool {
    max_open     = 32
    max_idle     = 8
    wait_timeout = "250ms"
    idle_timeout = "1m"
  }
}

# msgpack first: it is the default codec.
codec "msgpack" {}
codec "json" {}

plugin "registry-consul" {
  version = "1.2.0"
  source  = "github.com/acme/micro-registry-consul@v1.2.0"
  config {
    address = "127.0.0.1:8500"
    token   = env("CONSUL_TOKEN")
  }
}

gateway {
  listen = "0.0.0.0:8080"
  route "/greet/{name}" {
    service = "greeter"
  }
}

security {
  jwt {
    issuer = "https://auth.example.com"
  }
}

telemetry {
  log {
    level  = "debug"
    format = "json"
  }
  metrics {
    listen = ":9100"
  }
  tracing {
    endpoint = "localhost:4317"
  }
}
