# The mail appliance on every blade: the base OS layer is installed once per blade and
# shared by every appliance that names the same base and checksum.
resource "storm_appliance" "mail" {
  for_each = storm_appliance_server.blade
  server   = each.value.id
  name     = "mail"
  version  = "1.0"

  base {
    name   = "debian-12"
    url    = "https://images.example.org/debian-12-base.qcow2"
    sha256 = "0a41744c0626f2e3abde8158611a50e4266f237d7cb0429217f394257f049218"
  }

  image {
    url    = "https://images.example.org/mail-1.0.qcow2"
    sha256 = "1109e3bb72ae796e3c0ab82aef5c83c59166fda6049338eaa124791c72b231e4"
  }
}
