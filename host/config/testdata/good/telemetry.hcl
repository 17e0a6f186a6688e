# Every telemetry option.
variable "env" { default = "staging" }

service "greeter" {}

telemetry {
  log {
    level  = "warn"
    format = "text"
    levels = { gateway = "info", greeter = "debug" }
  }
  metrics {
    listen = "127.0.0.1:9100"
    path   = "/prom"
  }
  tracing {
    exporter        = "otlp_http"
    endpoint        = "https://otel.example.com/v1/traces"
    headers         = { "x-api-key" = env("OTLP_KEY", "secret") }
    timeout         = "5s"
    sampler         = "parentbased_traceidratio"
    ratio           = 0.25
    service_name    = "shop"
    service_version = "1.4.0"
    attributes      = { "deployment.environment" = var.env }
  }
}
