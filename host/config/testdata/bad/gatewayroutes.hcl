# Gateway routes, aggregates, CORS and backends: every problem is reported where it is.
gateway {
  max_body = "lots"
  timeout  = 5
  auth {}

  cors {
    allow_origins = ["ftp://files.example.com", "*."]
    max_age       = "-1s"
  }

  backend "greeter" {
    allow          = ["Greeter.["]
    blocked_status = 500
  }

  backend "greeter" {}

  route "GET greet" {
    service  = "greeter"
    endpoint = "Greeter.Hello"
  }

  route "GET /a/{x}" {
    service  = "{svc}"
    endpoint = "Hello"
    retry {
      attempts = 20
    }
    transform {
      add    = "nope"
      remove = ["a..b"]
    }
  }

  route "GET /a/{y}" {
    service  = "greeter"
    endpoint = "Greeter.Hello"
    colour   = "blue"
  }

  route "GET /health" {
    service = "greeter"
  }

  aggregate "GET /dash" {
    partial = "some"
  }

  aggregate "GET /dash2" {
    part "a" {
      service  = "greeter"
      endpoint = "Greeter.Hello"
    }
    part "a" {
      service  = "greeter"
      endpoint = "Greeter.Hello"
    }
  }
}
