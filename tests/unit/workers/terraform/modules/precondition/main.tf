# Fails at plan: the precondition refuses sizes of 10 and more.
variable "size" {
  type = number
}

resource "terraform_data" "disk" {
  input = var.size
  lifecycle {
    precondition {
      condition     = var.size < 10
      error_message = "size must be below 10."
    }
  }
}
