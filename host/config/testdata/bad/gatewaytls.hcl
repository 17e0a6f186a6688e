# The gateway's tls block needs a certificate and its key, a CA for client
# certificates, and knows only its own attributes.
service "orders" {}

gateway {
  tls {
    cert_file           = "gateway.crt"
    require_client_cert = true
    ciphers             = ["TLS_AES_128_GCM_SHA256"]
  }
  route "GET /orders" {
    service  = "orders"
    endpoint = "Orders.List"
  }
}
