# A module that needs no provider download: terraform_data is built into
# Terraform >= 1.4 and every OpenTofu. Gangway writes the run's inputs to
# gangway.auto.tfvars.json; each top-level input is one variable here.

variable "name" {
  type        = string
  description = "Name of the environment."
}

variable "replicas" {
  type    = number
  default = 1
  validation {
    condition     = var.replicas >= 0 && var.replicas <= 20
    error_message = "replicas must be between 0 and 20."
  }
}

variable "labels" {
  type    = map(string)
  default = {}
}

# A writeOnly input of the action: declared sensitive so Terraform never
# prints it; Gangway also redacts its value from log lines and outputs.
variable "api_token" {
  type      = string
  default   = ""
  sensitive = true
}

resource "terraform_data" "environment" {
  input = {
    name   = var.name
    labels = var.labels
  }
}

resource "terraform_data" "replica" {
  count = var.replicas
  input = "${var.name}-${count.index}"
}

output "name" {
  value = terraform_data.environment.output.name
}

output "replicas" {
  value = [for r in terraform_data.replica : r.output]
}

output "token_fingerprint" {
  value     = sha256(var.api_token)
  sensitive = true
}
