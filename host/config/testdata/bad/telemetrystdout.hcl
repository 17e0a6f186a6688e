# An endpoint for the stdout exporter, a ratio without a ratio sampler.
telemetry {
  tracing {
    exporter = "stdout"
    endpoint = "localhost:4317"
    ratio    = 0.5
  }
}
