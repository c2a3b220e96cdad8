# Production: three AZs, a NAT gateway per AZ, larger nodes and data stores.
# Its own AWS account (210987654321 here), apart from staging's (123456789012).
# Account-specific values (ARNs, CIDRs, domains) are placeholders: replace them before applying.
environment        = "production"
region             = "eu-central-1"
azs                = ["eu-central-1a", "eu-central-1b", "eu-central-1c"]
vpc_cidr           = "10.30.0.0/16"
single_nat_gateway = false

api_public_access_cidrs = ["203.0.113.0/24"]

node_groups = {
  general = {
    instance_types = ["m6i.xlarge", "m6a.xlarge"]
    min_size       = 3
    max_size       = 12
    desired_size   = 3
    # runtime-class-manager installs the Spin shim on these nodes; edge pods run only here.
    labels       = { spin = "true" }
    disk_size_gb = 80
  }
}

db_instance_class        = "db.r6g.large"
db_backup_retention_days = 35
db_read_replicas         = 1
redis_node_type          = "cache.r7g.large"
redis_replicas           = 2

media_bucket_prefix   = "heart-media-210987654321"
media_aliases         = ["media.example.com"]
media_certificate_arn = "arn:aws:acm:us-east-1:210987654321:certificate/00000000-0000-0000-0000-000000000011"

github_repository = "heart-to-heart/heart-to-heart"

elasticsearch_replicas = 3

# Staging's repositories and key: production deploys the digests tested there.
promote_from = {
  repository_arns = [
    "arn:aws:ecr:eu-central-1:123456789012:repository/heart-core",
    "arn:aws:ecr:eu-central-1:123456789012:repository/heart-edge",
  ]
  kms_key_arn = "arn:aws:kms:eu-central-1:123456789012:key/00000000-0000-0000-0000-000000000020"
}

mail_domain         = "example.com"
alert_slack_channel = "#heart-alerts"
