# NAME@SERVER_ID, where SERVER_ID is the storm_appliance_server id (NAME@LIBVIRT_URI).
# The deployment's files, variables and image come back from its record on the server.
terraform import 'storm_deployment.corp_mail["blade1"]' 'corp-mail@blade1@qemu+tls://blade1.rack.example/system'
