# The paper's example in plain HCL: a mail appliance (OpenSMTPD in storm's test guest) on two
# BMC-powered servers, scaled by the controller on the guests' CPU; the second server is the
# controller's to power on and off; the members answer round-robin (A and MX) under the group's
# DNS name on a storm network. The same configuration as the cdktf stack `mail-cluster`
# (stacks/src/mail-cluster.ts), with the same variables. The appliance comes from a channel
# (set channel_url and channel_trusted_key) or, when channel_url is null, from local images
# (base_*, mail_image_*, kernel_*, initrd_*: scripts/build-mail-layer.sh, scripts/build-guest.sh);
# the cdktf stack chooses when it is synthesized (mailSource), so it declares only the variables
# of the source it uses.

terraform {
  required_version = ">= 1.5"
  required_providers {
    storm = {
      source = "storm/storm"
    }
  }
}

variable "controller_url" {
  description = "URL of the storm controller (storm controller run), e.g. https://ctl.rack.example:8443."
  type        = string
}

variable "controller_token" {
  description = "The controller's admin token (the file admin-token that storm controller init wrote)."
  type        = string
  sensitive   = true
}

variable "controller_ca_pem" {
  description = "The controller's CA certificate (ca.pem), PEM."
  type        = string
}

variable "server1_libvirt_uri" {
  description = "libvirt URI of server 1."
  type        = string
}

variable "server1_bmc_address" {
  description = "Address of server 1's BMC (IPMI over LAN)."
  type        = string
}

variable "server1_bmc_port" {
  description = "UDP port of server 1's BMC."
  type        = number
  default     = 623
}

variable "server2_libvirt_uri" {
  description = "libvirt URI of server 2."
  type        = string
}

variable "server2_bmc_address" {
  description = "Address of server 2's BMC (IPMI over LAN)."
  type        = string
}

variable "server2_bmc_port" {
  description = "UDP port of server 2's BMC."
  type        = number
  default     = 623
}

variable "bmc_username" {
  description = "BMC user (the same on both servers)."
  type        = string
  default     = "admin"
}

variable "bmc_password" {
  description = "BMC password (the same on both servers)."
  type        = string
  sensitive   = true
}

variable "accelerator" {
  description = "How guests run on both servers: auto, kvm or tcg."
  type        = string
  default     = "auto"
}

variable "channel_url" {
  description = "URL of the channel feed (rss.xml) that publishes the mail appliance; null: use local images."
  type        = string
  default     = null
}

variable "channel_trusted_key" {
  description = "The channel publisher's key: the line `storm keygen` printed."
  type        = string
  default     = null
}

variable "mail_version" {
  description = "Version of the mail appliance built locally (images only)."
  type        = string
  default     = "1.0"
}

variable "base_name" {
  description = "Name of the base-OS layer (images only)."
  type        = string
  default     = "storm-test-base"
}

variable "base_url" {
  description = "The base layer: build/guest/layers/base.qcow2 (an absolute path or URL). Images only."
  type        = string
  default     = null
}

variable "base_sha256" {
  description = "sha256sum of the base layer. Images only."
  type        = string
  default     = null
}

variable "mail_image_url" {
  description = "The mail layer: build/guest/layers/mail.qcow2 (scripts/build-mail-layer.sh). Images only."
  type        = string
  default     = null
}

variable "mail_image_sha256" {
  description = "sha256sum of the mail layer. Images only."
  type        = string
  default     = null
}

variable "kernel_url" {
  description = "The test guest's kernel: build/guest/vmlinuz. Images only."
  type        = string
  default     = null
}

variable "kernel_sha256" {
  description = "Its sha256 (build/guest/guest.env). Images only."
  type        = string
  default     = null
}

variable "initrd_url" {
  description = "The test guest's initramfs: build/guest/initrd.gz. Images only."
  type        = string
  default     = null
}

variable "initrd_sha256" {
  description = "Its sha256 (build/guest/guest.env). Images only."
  type        = string
  default     = null
}

variable "mail_domain" {
  description = "The mail domain the cluster accepts mail for."
  type        = string
  default     = "storm.internal"
}

variable "network_cidr" {
  description = "The storm network the members are on (IPv4 CIDR); the group's DNS name is on it."
  type        = string
  default     = "192.168.160.0/24"
}

variable "server2_network_cidr" {
  description = "The network's subnet on server 2 when the servers share a segment (two lab blades on one machine); empty: network_cidr."
  type        = string
  default     = ""
}

variable "guest_cpu_high" {
  description = "Add a member when the members' mean CPU holds at or above this (the paper's 90 %)."
  type        = number
  default     = 0.9
}

variable "guest_cpu_low" {
  description = "Remove one when it holds below this (scale_in_target also removes what fewer members would carry)."
  type        = number
  default     = 0.3
}

variable "window_seconds" {
  description = "How long the load must hold, in seconds."
  type        = number
  default     = 30
}

variable "cooldown_out_seconds" {
  description = "Seconds after a scale-out before the next."
  type        = number
  default     = 60
}

variable "cooldown_in_seconds" {
  description = "Seconds after any change before a scale-in."
  type        = number
  default     = 300
}

variable "scale_out_target" {
  description = "A scale-out adds members until their mean would be this share of the high mark; 0 adds one at a time (the paper's rule)."
  type        = number
  default     = 0.8
}

variable "scale_in_target" {
  description = "A scale-in removes the members fewer would not miss, keeping their mean at most this share of the high mark; 0 removes one at a time below the low mark."
  type        = number
  default     = 0.7
}

variable "host_cpu_high" {
  description = "Power server 2 on when every powered server is at least this busy (the paper's 90 %)."
  type        = number
  default     = 0.9
}

variable "empty_hold_seconds" {
  description = "Seconds server 2 must have run nothing before it is powered off."
  type        = number
  default     = 600
}

variable "min_members" {
  description = "Members kept whatever the load."
  type        = number
  default     = 1
}

variable "max_members" {
  description = "Members never exceeded."
  type        = number
  default     = 4
}

variable "name_prefix" {
  description = "Put before every storm name (the cdktf stack's namePrefix)."
  type        = string
  default     = ""
}

provider "storm" {
  trusted_keys = var.channel_trusted_key == null ? [] : [var.channel_trusted_key]
  controller {
    url    = var.controller_url
    token  = var.controller_token
    ca_pem = var.controller_ca_pem
  }
}

locals {
  servers = [
    { libvirt_uri = var.server1_libvirt_uri, bmc_address = var.server1_bmc_address, bmc_port = var.server1_bmc_port },
    { libvirt_uri = var.server2_libvirt_uri, bmc_address = var.server2_bmc_address, bmc_port = var.server2_bmc_port },
  ]
}

resource "storm_appliance_server" "mail" {
  count       = 2
  name        = "${var.name_prefix}mail-${count.index + 1}"
  libvirt_uri = local.servers[count.index].libvirt_uri
  power       = count.index == 0 ? "on" : "controller"
  accelerator = var.accelerator
  ipmi {
    address  = local.servers[count.index].bmc_address
    port     = local.servers[count.index].bmc_port
    username = var.bmc_username
    password = var.bmc_password
  }
}

data "storm_appliance" "mail" {
  count   = var.channel_url == null ? 0 : 1
  channel = var.channel_url
  name    = "mail"
}

locals {
  from_channel = var.channel_url != null
  channel      = local.from_channel ? data.storm_appliance.mail[0] : null
  # One shape for both sources, so the appliance below is written once.
  mail = local.from_channel ? {
    name       = local.channel.name
    version    = local.channel.version
    memory_mib = local.channel.memory_mib
    vcpus      = local.channel.vcpus
    base       = local.channel.base_name == null ? [] : [{ name = local.channel.base_name, url = local.channel.base_url, sha256 = local.channel.base_sha256 }]
    image      = { url = local.channel.image_url, sha256 = local.channel.image_sha256, file = local.channel.system_disk_file }
    boot       = local.channel.boot == null ? [] : [local.channel.boot]
    provides   = local.channel.provides
    disks      = local.channel.disks # whatever the definition says: swap and user disks, a web panel
    webpanel   = local.channel.webpanel
    } : {
    name       = "mail"
    version    = var.mail_version
    memory_mib = 256
    vcpus      = 1
    base       = [{ name = var.base_name, url = var.base_url, sha256 = var.base_sha256 }]
    image      = { url = var.mail_image_url, sha256 = var.mail_image_sha256, file = null }
    boot       = [{ kernel_url = var.kernel_url, kernel_sha256 = var.kernel_sha256, initrd_url = var.initrd_url, initrd_sha256 = var.initrd_sha256, cmdline = null }]
    provides   = ["smtp"]
    disks      = null
    webpanel   = null
  }
}

resource "storm_appliance" "mail" {
  count      = 2
  server     = storm_appliance_server.mail[count.index].id
  name       = local.mail.name
  version    = local.mail.version
  memory_mib = local.mail.memory_mib
  vcpus      = local.mail.vcpus
  disks      = local.mail.disks
  webpanel   = local.mail.webpanel
  dynamic "base" {
    for_each = local.mail.base
    content {
      name   = base.value.name
      url    = base.value.url
      sha256 = base.value.sha256
    }
  }
  image {
    url    = local.mail.image.url
    sha256 = local.mail.image.sha256
    file   = local.mail.image.file
  }
  dynamic "boot" {
    for_each = local.mail.boot
    content {
      kernel_url    = boot.value.kernel_url
      kernel_sha256 = boot.value.kernel_sha256
      initrd_url    = boot.value.initrd_url
      initrd_sha256 = boot.value.initrd_sha256
      cmdline       = boot.value.cmdline
    }
  }
}

# The MTA accepts mail for the domains in /etc/smtpd/domains (README, "The mail appliance").
resource "storm_deployment" "corp_mail" {
  count     = 2
  appliance = storm_appliance.mail[count.index].id
  name      = "${var.name_prefix}corp-mail"
  file {
    path    = "/etc/smtpd/domains"
    content = "${var.mail_domain}\n"
  }
}

resource "storm_network" "mail" {
  count  = 2
  server = storm_appliance_server.mail[count.index].id
  name   = "${var.name_prefix}mail"
  cidr   = count.index == 1 ? coalesce(var.server2_network_cidr, var.network_cidr) : var.network_cidr
}

resource "storm_scaling_group" "mx" {
  name        = "${var.name_prefix}mx"
  deployments = storm_deployment.corp_mail[*].id
  network     = "${var.name_prefix}mail"
  min         = var.min_members
  max         = var.max_members
  dns_name    = "mail"
  services    = local.mail.provides # SRV records, and MX for smtp/mail
  # The paper's policy (another member past 90 % guest CPU, one less under the low mark), in
  # proportional steps both ways unless scale_out_target / scale_in_target are 0.
  guest_cpu_high       = var.guest_cpu_high
  guest_cpu_low        = var.guest_cpu_low
  window_seconds       = var.window_seconds
  cooldown_out_seconds = var.cooldown_out_seconds
  cooldown_in_seconds  = var.cooldown_in_seconds
  scale_out_target     = var.scale_out_target
  scale_in_target      = var.scale_in_target
  # Power the second server on when the powered ones pass 90 %, off when it has been empty a while.
  host_power {
    host_cpu_high      = var.host_cpu_high
    empty_hold_seconds = var.empty_hold_seconds
  }
  depends_on = [storm_network.mail]
}

output "mx_fqdn" {
  description = "The name that resolves round-robin (A and MX) to the running members, on the storm network."
  value       = "${storm_scaling_group.mx.dns_name}.${storm_network.mail[0].domain}"
}

output "members" {
  description = "The members the controller runs now."
  value       = storm_scaling_group.mx.members
}
