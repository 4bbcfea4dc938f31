provider "storm" {
  trusted_keys = ["storm-ed25519 b2a16655e4cbdb26 HjjMZv7ShkVBQAoIy9XRtKy4xyFL3ndmRbmbYDf0um0= acme appliances"]
}

data "storm_appliance" "webserv" {
  channel            = "https://appliances.acme.example/rss.xml"
  name               = "webserv"
  version_constraint = "~> 1.0"
}

resource "storm_appliance" "webserv" {
  server  = storm_appliance_server.blade1.id
  name    = data.storm_appliance.webserv.name
  version = data.storm_appliance.webserv.version

  base {
    name   = data.storm_appliance.webserv.base_name
    url    = data.storm_appliance.webserv.base_url
    sha256 = data.storm_appliance.webserv.base_sha256
  }

  image {
    url    = data.storm_appliance.webserv.image_url
    sha256 = data.storm_appliance.webserv.image_sha256
  }
}
