# max_body as a whole number of bytes; a partial pool keeps the other defaults.
transport "http" {
  max_body = 1048576
  pool {
    max_open = 1024
  }
}
