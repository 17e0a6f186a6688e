# Variables, references, env() and functions; the test overrides port with
# "eighty" and the undeclared nope, and SECRET_TOKEN is not set.
variable "zone" {}

variable "zone" {
  default = "x"
}

variable "1st" {
  default = "x"
}

variable "derived" {
  default = var.port
}

variable "port" {
  default = 8080
}

service "vars" {
  version = var.version
  address = var.zone
  args    = [greeter, local.name]
  env     = { HOME = var["port"], PATH = var }
  metadata = {
    token = env("SECRET_TOKEN")
    host  = env("HOST", "a", "b")
    fn    = lowercase("X")
    empty = env("")
  }
}
