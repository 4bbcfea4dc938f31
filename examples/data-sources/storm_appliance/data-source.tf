provider "storm" {
  trusted_keys = ["storm-ed25519 b2a16655e4cbdb26 HjjMZv7ShkVBQAoIy9XRtKy4xyFL3ndmRbmbYDf0um0= acme appliances"]
}

data "storm_appliance" "webserv" {
  channel            = "https://appliances.acme.example/rss.xml"
  name               = "webserv"
  version_constraint = "~> 1.0"
}

# Everything the definition says, passed through: the same configuration installs a layered
# appliance and a single-layer one (base_name is null: no base block), a plain image and a
# .tgz holding the system disk, with its hardware, swap and user disks and web panel.
resource "storm_appliance" "webserv" {
  server     = storm_appliance_server.blade1.id
  name       = data.storm_appliance.webserv.name
  version    = data.storm_appliance.webserv.version
  memory_mib = data.storm_appliance.webserv.memory_mib
  vcpus      = data.storm_appliance.webserv.vcpus
  disks      = data.storm_appliance.webserv.disks
  webpanel   = data.storm_appliance.webserv.webpanel

  dynamic "base" {
    for_each = data.storm_appliance.webserv.base_name == null ? [] : [1]
    content {
      name   = data.storm_appliance.webserv.base_name
      url    = data.storm_appliance.webserv.base_url
      sha256 = data.storm_appliance.webserv.base_sha256
    }
  }

  image {
    url    = data.storm_appliance.webserv.image_url
    sha256 = data.storm_appliance.webserv.image_sha256
    file   = data.storm_appliance.webserv.system_disk_file
  }
}
