terraform {
  required_providers {
    storm = {
      source = "storm/storm"
    }
  }
}

provider "storm" {}
