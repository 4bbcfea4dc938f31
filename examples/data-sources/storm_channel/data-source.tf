data "storm_channel" "acme" {
  url = "https://appliances.acme.example/rss.xml"
}

output "acme_appliances" {
  value = [for a in data.storm_channel.acme.appliances : "${a.name} ${a.version}"]
}
