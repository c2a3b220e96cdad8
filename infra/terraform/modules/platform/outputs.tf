output "cluster_name" {
  description = "aws eks update-kubeconfig --name <this>."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "The Kubernetes API server."
  value       = module.eks.cluster_endpoint
}

output "cluster_certificate_authority" {
  description = "Base64 CA of the API server."
  value       = module.eks.cluster_certificate_authority
}

output "core_role_arn" {
  description = "serviceAccount.roleArn of heart-core."
  value       = module.core_irsa.role_arn
}

output "repository_urls" {
  description = "image.repository of heart-core and heart-edge."
  value       = module.ecr.repository_urls
}

output "cd_role_arn" {
  description = "GitHub environment secret AWS_CD_ROLE_ARN."
  value       = module.ecr.cd_role_arn
}

output "db_address" {
  description = "Host of HEART_DATABASE_URL."
  value       = module.rds.address
}

output "db_master_user_secret_arn" {
  description = "Secrets Manager secret with the RDS admin credentials (to create the app user)."
  value       = module.rds.master_user_secret_arn
}

output "db_replica_address" {
  description = "Host of HEART_DATABASE_READ_URL (the first read replica), or null without one."
  value       = try(module.rds.replica_addresses[0], null)
}

output "db_instance_identifier" {
  description = "RDS instance, for point-in-time restore."
  value       = module.rds.instance_identifier
}

output "redis_host" {
  description = "host:port of the Redis primary: the edge's redis_host variable (Spin's allowed_outbound_hosts)."
  value       = "${module.elasticache.primary_endpoint}:${module.elasticache.port}"
}

output "redis_url_secret_arn" {
  description = "Secrets Manager secret with HEART_REDIS_URL / the edge's redis_url."
  value       = module.elasticache.redis_url_secret_arn
}

output "media_bucket" {
  description = "The media bucket."
  value       = module.media.bucket_name
}

output "media_cdn_domain_name" {
  description = "CloudFront host name for the media DNS record."
  value       = module.media.cdn_domain_name
}

output "nat_public_ips" {
  description = "Outbound addresses of the cluster."
  value       = module.vpc.nat_public_ips
}

output "ses_dkim_records" {
  description = "Easy DKIM CNAME records of the mail domain (name => value), for the DNS owner."
  value       = module.ses.dkim_records
}

output "ses_smtp_host" {
  description = "HEART_SMTP_HOST."
  value       = module.ses.smtp_host
}

output "ecr_repository_arns" {
  description = "Image repositories (on staging: production's promote_from.repository_arns)."
  value       = module.ecr.repository_arns
}

output "ecr_kms_key_arn" {
  description = "Key of the image repositories (on staging: production's promote_from.kms_key_arn)."
  value       = module.ecr.kms_key_arn
}

output "alertmanager_slack_secret_arn" {
  description = "Put the Slack webhook URL here (aws secretsmanager put-secret-value); External Secrets does the rest."
  value       = aws_secretsmanager_secret.alertmanager_slack.arn
}
