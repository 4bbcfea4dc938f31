resource "storm_network" "lan" {
  for_each = storm_appliance_server.blade
  server   = each.value.id
  name     = "storm"
  cidr     = "192.168.150.0/24"

  host {
    hostname = "mail"
    ip       = "192.168.150.10"
  }
}
