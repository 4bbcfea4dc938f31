# Two mail exchangers; placement puts each on the least-loaded blade that fits.
resource "storm_instance" "mx" {
  count       = 2
  name        = "mx${count.index + 1}"
  deployments = [for d in storm_deployment.corp_mail : d.id]
  network     = "storm"
  memory_mib  = 512
  variables   = { site = "mx${count.index + 1}" }
}

# A web server whose appliance has a user disk: keep_user_disks keeps it (with what the
# guest wrote to it) when the instance is replaced, e.g. for a new appliance version.
resource "storm_instance" "www" {
  name            = "www1"
  deployments     = [storm_deployment.site.id]
  network         = "storm"
  keep_user_disks = true
}

output "mx_addresses" {
  value = storm_instance.mx[*].ip
}

output "upload_page" {
  value = storm_instance.www.webpanel_url # http://IP/upload.php
}
