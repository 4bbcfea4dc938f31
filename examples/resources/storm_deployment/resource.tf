# The company's mail deployment on each blade's mail appliance. Files are templates:
# $${relay} reaches storm as ${relay} and is filled in from each instance's variables.
resource "storm_deployment" "corp_mail" {
  for_each  = storm_appliance.mail
  appliance = each.value.id
  name      = "corp-mail"

  variables = {
    relay = "smtp.example.org"
  }

  file {
    path        = "/etc/mail/relay.conf"
    content     = "relay $${relay} for $${site}\n"
    permissions = "0640"
  }
}
