# This machine's own libvirt: capacity is read, the storm pool is created.
resource "storm_appliance_server" "local" {
  name        = "local"
  libvirt_uri = "qemu:///system"
}

# A blade powered through its BMC. storm powers it on, waits for libvirt to answer,
# and shows an out-of-band power-off as drift in the next plan.
resource "storm_appliance_server" "blade1" {
  name                = "blade1"
  libvirt_uri         = "qemu+tls://blade1.rack.example/system"
  reserved_memory_mib = 256
  power               = "on"

  ipmi {
    address  = "blade1-bmc.rack.example"
    username = "admin"
    password = var.bmc_password
  }
}

variable "bmc_password" {
  type      = string
  sensitive = true
}
