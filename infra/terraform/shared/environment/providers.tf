provider "aws" {
  region = var.region
  default_tags {
    tags = {
      Project     = "heart-to-heart"
      Environment = var.environment
    }
  }
}

# Helm talks to the cluster this configuration creates; on the very first apply create the
# cluster first (docs/operations.md: terraform apply -target=module.platform.module.eks).
provider "helm" {
  kubernetes {
    host                   = module.platform.cluster_endpoint
    cluster_ca_certificate = base64decode(module.platform.cluster_certificate_authority)
    exec {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "aws"
      args        = ["eks", "get-token", "--cluster-name", module.platform.cluster_name, "--region", var.region]
    }
  }
}
