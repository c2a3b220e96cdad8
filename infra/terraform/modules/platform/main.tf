# One environment of Heart to Heart: network, cluster, data stores, media CDN, image repositories,
# IAM roles for service accounts, and the cluster add-ons. envs/staging and envs/production call
# this with their sizes; nothing here differs between them except through variables.

locals {
  name = "heart-${var.environment}"
  tags = merge(var.tags, {
    Project     = "heart-to-heart"
    Environment = var.environment
    ManagedBy   = "terraform"
  })
  # /20 subnets: public ones first, private ones after, one of each per AZ.
  public_subnet_cidrs  = [for i, _ in var.azs : cidrsubnet(var.vpc_cidr, 4, i)]
  private_subnet_cidrs = [for i, _ in var.azs : cidrsubnet(var.vpc_cidr, 4, i + 8)]
}

module "vpc" {
  source               = "../vpc"
  name                 = local.name
  cidr                 = var.vpc_cidr
  azs                  = var.azs
  public_subnet_cidrs  = local.public_subnet_cidrs
  private_subnet_cidrs = local.private_subnet_cidrs
  single_nat_gateway   = var.single_nat_gateway
  cluster_name         = local.name
  tags                 = local.tags
}

module "eks" {
  source               = "../eks"
  name                 = local.name
  kubernetes_version   = var.versions.kubernetes
  vpc_id               = module.vpc.vpc_id
  subnet_ids           = module.vpc.private_subnet_ids
  public_access_cidrs  = var.api_public_access_cidrs
  admin_principal_arns = var.admin_principal_arns
  node_groups          = var.node_groups
  tags                 = local.tags
}

module "rds" {
  source                     = "../rds"
  name                       = local.name
  vpc_id                     = module.vpc.vpc_id
  subnet_ids                 = module.vpc.private_subnet_ids
  allowed_security_group_ids = [module.eks.cluster_security_group_id]
  engine_version             = "8.4"
  instance_class             = var.db_instance_class
  backup_retention_days      = var.db_backup_retention_days
  read_replicas              = var.db_read_replicas
  tags                       = local.tags
}

# Generated once, kept in the (encrypted) state and in Secrets Manager; never written in code.
resource "random_password" "redis_auth_token" {
  length           = 64
  special          = true
  override_special = "!&#$^<>-"
}

module "elasticache" {
  source                     = "../elasticache"
  name                       = local.name
  vpc_id                     = module.vpc.vpc_id
  subnet_ids                 = module.vpc.private_subnet_ids
  allowed_security_group_ids = [module.eks.cluster_security_group_id]
  node_type                  = var.redis_node_type
  replicas                   = var.redis_replicas
  auth_token                 = random_password.redis_auth_token.result
  tags                       = local.tags
}

module "media" {
  source          = "../s3-cdn"
  name            = "${var.media_bucket_prefix}-${var.environment}"
  aliases         = var.media_aliases
  certificate_arn = var.media_certificate_arn
  tags            = local.tags
}

module "ecr" {
  source                      = "../ecr"
  name                        = local.name
  github_repository           = var.github_repository
  github_environments         = [var.environment]
  create_github_oidc_provider = var.create_github_oidc_provider
  pull_principal_arns         = var.ecr_pull_principal_arns
  promote_from                = var.promote_from
  tags                        = local.tags
}

# Mail: the SES domain identity with Easy DKIM, and the SMTP user the core sends through.
module "ses" {
  source = "../ses"
  name   = local.name
  domain = var.mail_domain
  tags   = local.tags
}

# --- IAM roles for service accounts ---

# The core reads and writes media objects; nothing else in AWS.
data "aws_iam_policy_document" "core" {
  statement {
    sid       = "MediaObjects"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${module.media.bucket_arn}/*"]
  }
  statement {
    sid       = "MediaBucket"
    actions   = ["s3:ListBucket"]
    resources = [module.media.bucket_arn]
  }
  statement {
    sid       = "MediaKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [module.media.kms_key_arn]
  }
}

module "core_irsa" {
  source            = "../irsa"
  name              = "${local.name}-core"
  oidc_provider_arn = module.eks.oidc_provider_arn
  oidc_issuer       = module.eks.oidc_issuer
  namespace         = var.app_namespace
  service_account   = "heart-core"
  policy_json       = data.aws_iam_policy_document.core.json
  tags              = local.tags
}

module "lb_controller_irsa" {
  source            = "../irsa"
  name              = "${local.name}-aws-load-balancer-controller"
  oidc_provider_arn = module.eks.oidc_provider_arn
  oidc_issuer       = module.eks.oidc_issuer
  namespace         = "kube-system"
  service_account   = "aws-load-balancer-controller"
  # Verbatim from the controller's release (policies/, checked by infra/check.sh): never edited here.
  policy_json = file("${path.module}/policies/aws-load-balancer-controller-v3.5.0.json")
  tags        = local.tags
}

module "cluster_autoscaler_irsa" {
  source            = "../irsa"
  name              = "${local.name}-cluster-autoscaler"
  oidc_provider_arn = module.eks.oidc_provider_arn
  oidc_issuer       = module.eks.oidc_issuer
  namespace         = "kube-system"
  service_account   = "cluster-autoscaler"
  policy_json       = data.aws_iam_policy_document.cluster_autoscaler.json
  tags              = local.tags
}

# --- add-ons ---

resource "random_password" "grafana_admin" {
  length  = 32
  special = false
}

module "addons" {
  source                      = "../addons"
  versions                    = var.versions
  environment                 = var.environment
  cluster_name                = module.eks.cluster_name
  region                      = var.region
  vpc_id                      = module.vpc.vpc_id
  lb_controller_role_arn      = module.lb_controller_irsa.role_arn
  cluster_autoscaler_role_arn = module.cluster_autoscaler_irsa.role_arn
  external_secrets_role_arn   = module.external_secrets_irsa.role_arn
  alert_slack_channel         = var.alert_slack_channel
  root_application            = var.argocd_root_application
  grafana_admin_password      = random_password.grafana_admin.result
  fluent_bit_values           = var.fluent_bit_values
  elasticsearch_replicas      = var.elasticsearch_replicas
}

# --- application secrets: generated here, kept in Secrets Manager, synced into the cluster by
# External Secrets Operator (helm/heart-core, helm/heart-edge templates/externalsecret.yaml).
# Nobody creates a Kubernetes Secret by hand; the only value an operator types is the Slack webhook.

resource "random_password" "edge_secret" {
  length  = 48
  special = false
}

# The core's Ed25519 signing key (PKCS#8 PEM), rotated by tainting it (docs/operations.md).
resource "tls_private_key" "jwt_signing" {
  algorithm = "ED25519"
}

resource "aws_secretsmanager_secret" "app" {
  name        = "${local.name}/app"
  description = "heart-core and heart-edge secrets (External Secrets Operator syncs them)"
  kms_key_id  = module.secrets_key.arn
  tags        = local.tags
  # checkov:skip=CKV2_AWS_57:generated values rotated by terraform (taint/replace), see docs/operations.md
}

resource "aws_secretsmanager_secret_version" "app" {
  secret_id = aws_secretsmanager_secret.app.id
  secret_string = jsonencode({
    HEART_EDGE_SECRET     = random_password.edge_secret.result
    HEART_JWT_SIGNING_KEY = tls_private_key.jwt_signing.private_key_pem
    HEART_SMTP_USERNAME   = module.ses.smtp_username
    HEART_SMTP_PASSWORD   = module.ses.smtp_password
  })
  # Terraform writes the first version; rotations (docs/operations.md) write new versions in
  # Secrets Manager, which a later apply must not revert.
  lifecycle {
    ignore_changes = [secret_string]
  }
}

# Alertmanager's Slack webhook: the secret is made here, its value put in by an operator
# (aws secretsmanager put-secret-value), since only Slack can issue it.
resource "aws_secretsmanager_secret" "alertmanager_slack" {
  name        = "${local.name}/alertmanager-slack-webhook"
  description = "Slack incoming-webhook URL Alertmanager posts to"
  kms_key_id  = module.secrets_key.arn
  tags        = local.tags
  # checkov:skip=CKV2_AWS_57:a webhook URL issued by Slack cannot be rotated by a Lambda
}

module "secrets_key" {
  source      = "../kms-key"
  description = "${local.name} application secrets"
  alias       = "${local.name}-secrets"
  tags        = local.tags
}

data "aws_iam_policy_document" "external_secrets" {
  statement {
    sid     = "ReadOwnSecrets"
    actions = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = [
      aws_secretsmanager_secret.app.arn,
      aws_secretsmanager_secret.alertmanager_slack.arn,
      module.elasticache.redis_url_secret_arn,
      module.rds.master_user_secret_arn,
    ]
  }
  statement {
    sid       = "DecryptThem"
    actions   = ["kms:Decrypt"]
    resources = [module.secrets_key.arn, module.elasticache.kms_key_arn, module.rds.master_user_secret_kms_key_arn]
  }
}

module "external_secrets_irsa" {
  source            = "../irsa"
  name              = "${local.name}-external-secrets"
  oidc_provider_arn = module.eks.oidc_provider_arn
  oidc_issuer       = module.eks.oidc_issuer
  namespace         = "external-secrets"
  service_account   = "external-secrets"
  policy_json       = data.aws_iam_policy_document.external_secrets.json
  tags              = local.tags
}
