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
  listen   = "0.0.0.0:8080"
  max_body = "1MiB"
  timeout  = "5s"

  cors {
    allow_origins     = ["https://app.example.com", "*.example.com"]
    allow_headers     = ["Content-Type", "Authorization"]
    expose_headers    = ["Micro-Request-Id"]
    allow_credentials = true
    max_age           = "10m"
  }

  breaker {
    failures           = 3
    open_timeout       = "10s"
    half_open_requests = 2
  }

  docs {
    title   = "Greeter API"
    version = "2.0.0"
  }

  backend "greeter" {
    block          = ["Greeter.Admin*"]
    blocked_status = 404
    breaker {
      disabled = true
    }
  }

  route "GET /greet/{name}" {
    service  = "greeter"
    endpoint = "Greeter.Hello"
    timeout  = "2s"
    summary  = "Greets someone"
    retry {
      attempts        = 2
      per_try_timeout = "500ms"
      backoff         = "10ms"
      max_backoff     = "100ms"
    }
    cors {
      allow_origins = ["*"]
    }
    transform {
      add    = { source = "gateway", version = 2, tags = ["a", "b"] }
      remove = ["internal"]
      rename = { message = "greeting" }
    }
  }

  route "POST /rpc/{service}/{endpoint}" {
    service  = "{service}"
    endpoint = "{endpoint}"
  }

  aggregate "GET /dashboard/{name}" {
    timeout = "1s"
    partial = "partial"
    part "greeting" {
      service  = "greeter"
      endpoint = "Greeter.Hello"
      timeout  = "500ms"
    }
    part "billing" {
      service  = "billing"
      endpoint = "Billing.Balance"
      retry {
        attempts       = 1
        non_idempotent = true
      }
    }
  }
}

security {
  jwt {
    issuer = "https://auth.example.com"
    jwks { url = "https://auth.example.com/certs" }
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
