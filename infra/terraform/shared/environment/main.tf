# Kubernetes and every add-on version come from one file, checked against
# infra/versions/supported-versions.yaml by infra/check.sh.
locals {
  versions = yamldecode(file("${path.module}/../../../versions/versions.yaml"))
}

module "platform" {
  source = "../../modules/platform"

  environment = var.environment
  region      = var.region
  azs         = var.azs
  vpc_cidr    = var.vpc_cidr

  single_nat_gateway      = var.single_nat_gateway
  versions                = local.versions
  api_public_access_cidrs = var.api_public_access_cidrs
  admin_principal_arns    = var.admin_principal_arns
  node_groups             = var.node_groups

  db_instance_class        = var.db_instance_class
  db_backup_retention_days = var.db_backup_retention_days
  db_read_replicas         = var.db_read_replicas
  redis_node_type          = var.redis_node_type
  redis_replicas           = var.redis_replicas

  media_bucket_prefix   = var.media_bucket_prefix
  media_aliases         = var.media_aliases
  media_certificate_arn = var.media_certificate_arn

  github_repository           = var.github_repository
  create_github_oidc_provider = var.create_github_oidc_provider
  ecr_pull_principal_arns     = var.ecr_pull_principal_arns
  promote_from                = var.promote_from

  mail_domain         = var.mail_domain
  alert_slack_channel = var.alert_slack_channel
  # Argo CD's app of apps: the same manifest an operator can kubectl-apply.
  argocd_root_application = yamldecode(file("${path.module}/../../../../deploy/argocd/root/${var.environment}.yaml"))

  fluent_bit_values      = file("${path.module}/../../../../deploy/logging/fluent-bit-values.yaml")
  elasticsearch_replicas = var.elasticsearch_replicas
}
