# The paper's Figure 2 appliance in plain HCL: the single-layer web server from a signed channel
# (its image a .tgz holding sys.img), with its swap and user disks and web panel, on one
# BMC-powered server. The same configuration as the cdktf stack `web-server` (stacks/src/web-server.ts),
# with the same variables.

terraform {
  required_version = ">= 1.5"
  required_providers {
    storm = {
      source = "storm/storm"
    }
  }
}

variable "channel_url" {
  description = "URL of the channel feed (rss.xml) that publishes the web server appliance."
  type        = string
}

variable "channel_trusted_key" {
  description = "The channel publisher's key: the line `storm keygen` printed."
  type        = string
}

variable "libvirt_uri" {
  description = "libvirt URI of the server, e.g. qemu+tls://blade1.rack.example/system."
  type        = string
}

variable "bmc_address" {
  description = "Address of the server's BMC (IPMI over LAN)."
  type        = string
}

variable "bmc_port" {
  description = "UDP port of the BMC."
  type        = number
  default     = 623
}

variable "bmc_username" {
  description = "BMC user."
  type        = string
  default     = "admin"
}

variable "bmc_password" {
  description = "BMC password."
  type        = string
  sensitive   = true
}

variable "accelerator" {
  description = "How guests run: auto, kvm or tcg (tcg where /dev/kvm exists but does not work)."
  type        = string
  default     = "auto"
}

variable "network_cidr" {
  description = "The storm network the web server is on (IPv4 CIDR)."
  type        = string
  default     = "192.168.161.0/24"
}

variable "site_name" {
  description = "What the web server's index page says."
  type        = string
  default     = "www1"
}

variable "instance_state" {
  description = "running, paused or shutoff."
  type        = string
  default     = "running"
}

variable "name_prefix" {
  description = "Put before every storm name (the cdktf stack's namePrefix)."
  type        = string
  default     = ""
}

provider "storm" {
  trusted_keys = [var.channel_trusted_key]
}

resource "storm_appliance_server" "web" {
  name        = "${var.name_prefix}web-1"
  libvirt_uri = var.libvirt_uri
  accelerator = var.accelerator
  ipmi {
    address  = var.bmc_address
    port     = var.bmc_port
    username = var.bmc_username
    password = var.bmc_password
  }
}

data "storm_appliance" "webserv" {
  channel = var.channel_url
  name    = "webserv" # Figure 2's name
}

resource "storm_appliance" "webserv" {
  server     = storm_appliance_server.web.id
  name       = data.storm_appliance.webserv.name
  version    = data.storm_appliance.webserv.version
  memory_mib = data.storm_appliance.webserv.memory_mib
  vcpus      = data.storm_appliance.webserv.vcpus
  disks      = data.storm_appliance.webserv.disks    # swap and user disks
  webpanel   = data.storm_appliance.webserv.webpanel # "/upload.php"
  dynamic "base" {                                   # none for a single-layer appliance
    for_each = data.storm_appliance.webserv.base_name == null ? [] : [1]
    content {
      name   = data.storm_appliance.webserv.base_name
      url    = data.storm_appliance.webserv.base_url
      sha256 = data.storm_appliance.webserv.base_sha256
    }
  }
  dynamic "boot" {
    for_each = data.storm_appliance.webserv.boot[*]
    content {
      kernel_url    = boot.value.kernel_url
      kernel_sha256 = boot.value.kernel_sha256
      initrd_url    = boot.value.initrd_url
      initrd_sha256 = boot.value.initrd_sha256
      cmdline       = boot.value.cmdline
    }
  }
  image {
    url    = data.storm_appliance.webserv.image_url
    sha256 = data.storm_appliance.webserv.image_sha256
    file   = data.storm_appliance.webserv.system_disk_file # "sys.img" in webserv.tgz
  }
}

resource "storm_deployment" "site" {
  appliance = storm_appliance.webserv.id
  name      = "${var.name_prefix}site"
  file {
    path    = "/srv/www/index.html"
    content = "<h1>$${site}</h1>\n" # $${site}: storm expands ${site}
  }
}

resource "storm_network" "web" {
  server = storm_appliance_server.web.id
  name   = "${var.name_prefix}web"
  cidr   = var.network_cidr
}

resource "storm_instance" "www" {
  name            = "${var.name_prefix}www1"
  deployments     = [storm_deployment.site.id]
  network         = storm_network.web.name
  state           = var.instance_state
  keep_user_disks = true # the user disk outlives a replacement, e.g. a new version
  variables       = { site = var.site_name }
}

output "webpanel_url" {
  description = "The web panel (Figure 2's <webpanel>) at the instance's address; \"\" until it has one."
  value       = storm_instance.www.webpanel_url == null ? "" : storm_instance.www.webpanel_url
}

output "ip" {
  description = "The instance's address on the storm network; \"\" until it has one."
  value       = storm_instance.www.ip == null ? "" : storm_instance.www.ip
}

output "disks" {
  description = "Its swap and user disks."
  value       = storm_instance.www.disks
}
