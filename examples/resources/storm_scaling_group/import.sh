# The group's name, as the controller knows it.
terraform import storm_scaling_group.mail mx
