# Two services: helloworld runs inside the host (micro's own demo service) and
# counter runs as a child process built from ./counter. The child finds the
# host's registry and broker through the host, so the in-memory registry is
# shared by both.

service "helloworld" {
  version = "1.0.0"
}

service "counter" {
  version = "1.0.0"
  package = "./counter"
}

registry "memory" {}
