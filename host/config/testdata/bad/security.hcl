# Security: every problem is reported where it is.
transport "grpc" {}
plugin "transport-grpc" { version = "1.0.0" }

security {
  realm = ["x"]
  colour = "blue"
  jwt {
    roles_claim = "realm_access..roles"
    leeway      = "-1s"
    key {
      secret = "short"
      file   = "jwt.pub"
    }
    key {
      algorithms = ["none", "HS256"]
    }
    key {
      pem = "not a pem"
    }
    jwks {
      url     = "ftp://keys.example.com"
      timeout = "0s"
    }
  }
  internal {
    ttl = 60
    signing {
      algorithm   = "HS999"
      secret_file = ""
    }
  }
  tls {
    require_client_cert = true
  }
  rbac {
    roles    = { reader = ["orders"], admin = ["orders:*:"] }
    bindings = ["x"]
    guard "Orders" {
      match       = "some"
      permissions = ["a:b:c:d"]
    }
    guard "Orders.Get" {
      public = true
      roles  = ["reader"]
    }
    guard {}
  }
}

security {}
