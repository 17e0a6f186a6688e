# Every telemetry mistake.
telemetry {
  log {
    level  = "loud"
    levels = { gateway = "chatty" }
  }
  metrics {
    listen = "nowhere"
    path   = "metrics"
    port   = 9100
  }
  tracing {
    exporter = "jaeger"
    sampler  = "sometimes"
    ratio    = 2
    timeout  = "0s"
    service_name = ""
    attributes = { "bad key" = "x" }
  }
}
