# Every component served by a plugin, and a config block with nested blocks.
registry "memory" {}
broker "nats" {}
transport "grpc" {}
codec "json" {}
codec "protobuf" {}

# The built-in memory registry, served out of process: the plugin wins.
plugin "registry-memory" {
  version = "v0.1.0"
}

plugin "broker-nats" {
  version = "2.0.0-rc.1"
  config {
    servers = ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223"]
    timeout = "2s"
    retries = 3
    ratio   = 0.5
    verbose = true
    headers = { x-team = "core" }

    tls {
      ca   = "ca.pem"
      skip = false
    }
    stream "orders" {
      subjects = ["orders.>"]
    }
    stream "audit" {
      subjects = ["audit.*"]
    }
    consumer {
      name = "first"
    }
    consumer {
      name = "second"
    }
  }
}

plugin "transport-grpc" {
  version    = "1.0.0"
  gomaxprocs = 4 # the transport carries every call: more of the CPUs
}

plugin "codec-protobuf" {
  version = "0.3.0"
  config {}
}
