# NAME@SERVER_ID, where SERVER_ID is the storm_appliance_server id (NAME@LIBVIRT_URI).
terraform import 'storm_instance.mx[0]' 'mx1@blade1@qemu+tls://blade1.rack.example/system'
