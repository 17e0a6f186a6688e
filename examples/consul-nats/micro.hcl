# Orders and mailer on the backends a cluster runs: Consul finds services, NATS
# JetStream carries events at least once. orders publishes "orders.placed" for
# every order; mailer, a queue group of one or many instances, sends one mail
# per order. Start Consul and NATS first (see the README's "Consul and NATS").

service "orders" {
  version = "1.0.0"
  package = "./orders"
}

service "mailer" {
  version = "1.0.0"
  package = "./mailer"
}

registry "consul" {}
broker "nats" {}

plugin "registry-consul" {
  version = "0.1.0"
  config {
    address = env("CONSUL_HTTP_ADDR", "127.0.0.1:8500")
  }
}

plugin "broker-nats" {
  version = "0.1.0"
  config {
    url = env("NATS_URL", "nats://127.0.0.1:4222")
    jetstream = {
      enabled  = true
      stream   = "ORDERS"
      subjects = ["orders.>"]
    }
  }
}
