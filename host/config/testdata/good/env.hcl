# env(): set, set to "", unset with a default; inside a variable default too.
# The test environment has CONSUL_TOKEN=s3cret, MICRO_ZONE=eu-2 and EMPTY="".
variable "zone" {
  default = env("MICRO_ZONE", "eu-1")
}

service "env-demo" {
  address = env("SERVICE_ADDR", "127.0.0.1:7000")
  env = {
    TOKEN = env("CONSUL_TOKEN")
  }
  metadata = {
    zone     = var.zone
    empty    = env("EMPTY", "not used: EMPTY is set")
    fallback = env("NOT_SET", "fallback")
  }
}
