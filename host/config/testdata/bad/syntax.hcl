# Syntax errors: the parser recovers and reports each one; nothing is decoded.
service "a" {
  version = "1"
  version = "2"
}

registry "memory" {
  selector = 'random'
}

transport "http" {
  max_body = "4MiB" "extra"
}
