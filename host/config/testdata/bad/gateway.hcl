# Gateway, security and telemetry: listen addresses, duplicates, log settings.
gateway {
  listen = "localhost"
  route "/a" {}
}

gateway {
  listen = ":8080"
}

security {}

security {}

telemetry {
  log {
    level  = "verbose"
    format = "xml"
  }
  log {}
  metrics {}
  metrics {}
}

telemetry {}
