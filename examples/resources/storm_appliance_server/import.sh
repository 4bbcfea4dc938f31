# NAME@LIBVIRT_URI; NAME alone means qemu:///system. The ipmi block is not imported
# (the password never leaves the BMC): the next plan adds it from your configuration.
terraform import storm_appliance_server.blade1 'blade1@qemu+tls://blade1.rack.example/system'
