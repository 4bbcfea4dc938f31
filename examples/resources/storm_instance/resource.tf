# Two mail exchangers; placement puts each on the least-loaded blade that fits.
resource "storm_instance" "mx" {
  count       = 2
  name        = "mx${count.index + 1}"
  deployments = [for d in storm_deployment.corp_mail : d.id]
  network     = "storm"
  memory_mib  = 512
  variables   = { site = "mx${count.index + 1}" }
}

output "mx_addresses" {
  value = storm_instance.mx[*].ip
}
