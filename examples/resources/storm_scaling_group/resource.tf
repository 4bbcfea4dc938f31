# The paper's mail cluster: one exchanger at least, up to four; a member is added when the
# exchangers' CPU holds at 90 % for a minute, and the blades are powered for them.
resource "storm_scaling_group" "mail" {
  name        = "mx"
  deployments = [for d in storm_deployment.corp_mail : d.id]
  network     = storm_network.lan.name
  memory_mib  = 512
  min         = 1
  max         = 4
  dns_name    = "mail"

  variables = { relay = "smtp.example.org" }
  file {
    path    = "/etc/mail/hostname"
    content = "$${member}.mail.example.org\n"
  }

  host_power {
    empty_hold_seconds = 900
  }
}

output "mail_members" {
  value = storm_scaling_group.mail.members
}
