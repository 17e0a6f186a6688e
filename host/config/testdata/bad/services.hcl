# Service names, package/binary, addresses.
service "" {}

service "my service" {}

service "greeter" {
  package = "./cmd/greeter"
  binary  = "./bin/greeter"
}

service "greeter" {}

service "addr" {
  address   = "localhost"
  advertise = ":8080"
}

service "addr2" {
  address = "127.0.0.1:99999"
}

service "addr3" {
  version   = ""
  advertise = "10.0.0.1:0"
  address   = "127.0.0.1:http"
}
