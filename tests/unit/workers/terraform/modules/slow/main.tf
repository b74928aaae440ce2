# Slow at apply: a provisioner that sleeps, run without a shell (the
# interpreter is the program itself). For the cancel and timeout tests.
variable "seconds" {
  type    = number
  default = 60
}

resource "terraform_data" "slow" {
  input = var.seconds
  provisioner "local-exec" {
    interpreter = ["sleep"]
    command     = tostring(var.seconds)
  }
}
