# The string functions expressions may call.
variable "team" {
  default = "Payments"
}

service "functions" {
  version = upper("v1-beta")
  metadata = {
    team    = lower(var.team)
    label   = format("%s-%s", lower(var.team), "api")
    joined  = join(",", ["a", "b", "c"])
    trimmed = trimspace("  padded  ")
  }
}
