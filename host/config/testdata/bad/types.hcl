# Wrong types, bad durations and sizes, out-of-range numbers.
service "types" {
  version       = ["1"]
  args          = "-v"
  env           = ["A=1"]
  metadata      = "zone"
  ttl           = "thirty"
  drain_timeout = "-5s"
}

service "more" {
  ttl           = 30
  drain_timeout = ["1s"]
  env           = { "" = "x" }
  args          = ["ok", null]
}

transport "http" {
  http2    = "maybe"
  max_body = "4 furlongs"
  pool {
    max_open     = -1
    max_idle     = 1.5
    wait_timeout = "0s"
    idle_timeout = true
  }
}
