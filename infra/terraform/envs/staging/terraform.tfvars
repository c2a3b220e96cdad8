# Staging: the same shape as production, smaller and with one NAT gateway.
# Account-specific values (ARNs, CIDRs, domains) are placeholders: replace them before applying.
environment        = "staging"
region             = "eu-central-1"
azs                = ["eu-central-1a", "eu-central-1b"]
vpc_cidr           = "10.20.0.0/16"
single_nat_gateway = true

api_public_access_cidrs = ["203.0.113.0/24"]

node_groups = {
  general = {
    instance_types = ["t3.large"]
    min_size       = 2
    max_size       = 5
    desired_size   = 3
    # runtime-class-manager installs the Spin shim on these nodes; edge pods run only here.
    labels = { spin = "true" }
  }
}

db_instance_class        = "db.t4g.medium"
db_backup_retention_days = 7
redis_node_type          = "cache.t4g.small"
redis_replicas           = 1

media_bucket_prefix   = "heart-media-123456789012"
media_aliases         = ["media.staging.example.com"]
media_certificate_arn = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000010"

github_repository = "heart-to-heart/heart-to-heart"

elasticsearch_replicas = 1

# Production's CD role copies the images that passed staging (promotion, no rebuild).
ecr_pull_principal_arns = ["arn:aws:iam::210987654321:role/heart-production-github-cd"]

mail_domain         = "staging.example.com"
alert_slack_channel = "#heart-alerts-staging"
