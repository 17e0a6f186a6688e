# Plugin labels, versions, duplicates and config blocks.
plugin "consul" {
  version = "1.0.0"
}

plugin "database-postgres" {
  version = "1.0.0"
}

plugin "registry-" {
  version = "1.0.0"
}

plugin "registry-Consul" {
  version = "1.0.0"
}

plugin "registry-etcd" {}

plugin "broker-nats" {
  version = "not a version!"
}

plugin "broker-nats" {
  version = "1.0.0"
}

plugin "codec-cbor" {
  version = "0.1.0"
  config {
    a = 1
  }
  config {
    b = 2
  }
}

plugin "transport-grpc" {
  version = "0.1.0"
  config {
    tls = true
    tls {
      ca = "ca.pem"
    }
    server "a" {
      port = 1
    }
    server {
      port = 2
    }
  }
}

plugin "codec-avro" {
  version    = "1.0.0"
  gomaxprocs = 0
}

plugin "codec-protobuf" {
  version    = "1.0.0"
  gomaxprocs = "two"
}

registry "etcd" {}
broker "nats" {}
codec "cbor" {}
transport "grpc" {}
codec "avro" {}
codec "protobuf" {}
