# Variables; the test overrides zone, port, debug and region.
variable "zone" {
  default = "eu-1"
}

variable "port" {
  default     = 8080
  description = "Overridden with \"9191\", converted to a number like the default."
}

variable "debug" {
  default = false
}

variable "region" {
  description = "No default: the override supplies it."
}

variable "kept" {
  default = "from the default"
}

service "vars" {
  address = format("127.0.0.1:%d", var.port)
  metadata = {
    zone   = var.zone
    region = var.region
    kept   = var.kept
  }
}

transport "http" {
  http2 = var.debug
}
