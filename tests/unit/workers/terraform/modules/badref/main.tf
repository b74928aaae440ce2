# Fails at plan: an output refers to a resource that does not exist.
output "broken" {
  value = terraform_data.missing.output
}
