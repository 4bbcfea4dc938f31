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

# The paper's Figure 2: a single-layer appliance (no base block), published as a .tgz that
# holds its system disk, sys.img. Every instance also gets an empty 128 MiB swap disk (vdc)
# and a 128 MiB user disk (vdd), and shows its web panel as webpanel_url.
resource "storm_appliance" "webserv" {
  server     = storm_appliance_server.blade["blade1"].id
  name       = "webserv"
  version    = "1.0.0-0"
  memory_mib = 512
  webpanel   = "/upload.php"
  disks = [
    { name = "hda3", type = "swap", size_mib = 128 },
    { name = "hda2", type = "user", size_mib = 128 },
  ]

  image {
    url    = "https://cs.colorado.edu/appliances/webserv.tgz"
    sha256 = "5a3c9f0e1b7d2c4a8e6f0b1d3c5a7e9f1b3d5c7a9e1f3b5d7c9a1e3f5b7d9c1a"
    file   = "sys.img"
  }
}
