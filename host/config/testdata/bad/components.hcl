# Duplicate component blocks, unknown names, bad selector.
registry "consul" {
  selector = "fastest"
}

registry "memory" {}

broker "nats" {}

broker "memory" {}

transport "grpc" {
  http2 = true
  pool {}
}

transport "http" {}

codec "json" {}
codec "protobuf" {}
codec "json" {}
codec "" {}
