# The security block in full: bearer tokens, internal tokens, mutual TLS and
# guards, and gateway routes that require callers and roles.
variable "issuer" { default = "https://login.example.com" }

service "orders" {}

gateway {
  auth = true # every route below unless it says otherwise

  tls { # HTTPS for the gateway's own listener
    cert_file = "certs/gateway.crt"
    key_file  = "certs/gateway.key"
  }

  route "GET /orders/{id}" {
    service  = "orders"
    endpoint = "Orders.Get"
  }
  route "GET /status" {
    service  = "orders"
    endpoint = "Orders.Status"
    auth     = false
  }
  route "DELETE /orders/{id}" {
    service        = "orders"
    endpoint       = "Orders.Delete"
    required_roles = ["admin", "ops"]
    roles_match    = "all"
  }
  aggregate "GET /dashboard" {
    required_roles = ["reader"]
    part "status" {
      service  = "orders"
      endpoint = "Orders.Status"
    }
  }
}

security {
  realm = "orders"
  jwt {
    issuer       = var.issuer
    audience     = ["orders-api", "admin-api"]
    leeway       = "30s"
    roles_claim  = "realm_access.roles"
    scopes_claim = "scp"
    key {
      id         = "2024-01"
      file       = "keys/jwt.pub"
      algorithms = ["RS256", "PS256"]
    }
    key {
      secret     = env("JWT_SECRET")
      algorithms = ["HS256"]
    }
    jwks {
      url                  = format("%s/certs", var.issuer)
      refresh_interval     = "10m"
      min_refresh_interval = "1m"
      timeout              = "5s"
      algorithms           = ["ES256", "EdDSA"]
    }
  }
  internal {
    issuer = "orders-mesh"
    ttl    = "30s"
    leeway = "2s"
    key { secret_file = "/etc/micro/internal.key" }
    signing {
      id          = "mesh-1"
      secret_file = "/etc/micro/internal.key"
    }
  }
  tls {
    cert_file           = "certs/tls.crt"
    key_file            = "certs/tls.key"
    ca_file             = "/etc/micro/ca.crt"
    client_ca_file      = "/etc/micro/clients-ca.crt"
    require_client_cert = true
    server_name         = "orders.internal"
    poll_interval       = "2s"
  }
  rbac {
    roles = {
      reader = ["orders:read"]
      admin  = ["orders:*", "invoices:read:own"]
      root   = ["*"]
    }
    bindings = { "spiffe://prod/billing" = ["reader"] }
    guard "Orders.Delete" {
      permissions = ["orders:delete"]
    }
    guard "Orders.Status" { public = true }
    guard "Orders.*" {
      roles = ["reader", "admin"]
      match = "any"
    }
    guard "*" {}
  }
}
