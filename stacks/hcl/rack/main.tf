# Two appliance servers powered through their BMCs: the paper's managed rack, in plain HCL.
# Try it on the simulated rack: `npm run lab` writes terraform.tfvars here (see README).

terraform {
  required_version = ">= 1.5"
  required_providers {
    storm = {
      source = "storm/storm"
    }
  }
}

variable "blades" {
  description = "The rack: each blade's libvirt URI and its BMC."
  type = map(object({
    libvirt_uri = string
    bmc_address = string
    bmc_port    = optional(number, 623)
    bmc_user    = string
  }))
}

variable "bmc_password" {
  description = "Password of the BMC user (the same on every blade here)."
  type        = string
  sensitive   = true
}

resource "storm_appliance_server" "blade" {
  for_each = var.blades

  name                = each.key
  libvirt_uri         = each.value.libvirt_uri
  reserved_memory_mib = 128
  power               = "on"
  # The lab's blades run inside VMs where libvirt offers KVM but guests hang under it: emulate.
  accelerator = "tcg"

  ipmi {
    address  = each.value.bmc_address
    port     = each.value.bmc_port
    username = each.value.bmc_user
    password = var.bmc_password
  }
}

output "capacity" {
  description = "What each blade offers to appliances."
  value = {
    for name, s in storm_appliance_server.blade : name => {
      cpus                 = s.cpus
      available_memory_mib = s.available_memory_mib
      hypervisor           = s.hypervisor
    }
  }
}
