# Gateway routes that need callers, without a jwt block to verify them.
service "orders" {}

gateway {
  auth = true
  route "GET /a" {
    service        = "orders"
    endpoint       = "Orders.A"
    required_roles = ["admin", ""]
    roles_match    = "most"
  }
  route "GET /b" {
    service  = "orders"
    endpoint = "Orders.B"
    auth     = "yes"
  }
  route "GET /c" {
    service        = "orders"
    endpoint       = "Orders.C"
    auth           = false
    required_roles = ["admin"]
  }
  aggregate "GET /d" {
    auth = true
    part "a" {
      service  = "orders"
      endpoint = "Orders.A"
    }
  }
}

security {
  rbac {}
}
