# Required roles imply auth: without a jwt block there is nothing to check
# the callers' tokens with, and each route that asks for roles says so.
service "orders" {}

gateway {
  route "GET /a" {
    service        = "orders"
    endpoint       = "Orders.A"
    required_roles = ["admin"]
  }
  aggregate "GET /b" {
    required_roles = ["reader"]
    part "a" {
      service  = "orders"
      endpoint = "Orders.A"
    }
  }
}
