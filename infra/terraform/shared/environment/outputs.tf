output "cluster_name" {
  description = "aws eks update-kubeconfig --name <this> --region <region>."
  value       = module.platform.cluster_name
}

output "core_role_arn" {
  description = "helm/heart-core values-<env>.yaml serviceAccount.roleArn."
  value       = module.platform.core_role_arn
}

output "repository_urls" {
  description = "image.repository of both charts."
  value       = module.platform.repository_urls
}

output "cd_role_arn" {
  description = "GitHub environment secret AWS_CD_ROLE_ARN."
  value       = module.platform.cd_role_arn
}

output "db_address" {
  description = "Host of HEART_DATABASE_URL."
  value       = module.platform.db_address
}

output "db_replica_address" {
  description = "Host of HEART_DATABASE_READ_URL (helm/heart-core externalSecret.databaseReadHost), or null."
  value       = module.platform.db_replica_address
}

output "db_master_user_secret_arn" {
  description = "RDS admin credentials (Secrets Manager), to create the application user."
  value       = module.platform.db_master_user_secret_arn
}

output "db_instance_identifier" {
  description = "For point-in-time restore."
  value       = module.platform.db_instance_identifier
}

output "redis_host" {
  description = "The edge's redis_host variable (helm/heart-edge/values-<env>.yaml)."
  value       = module.platform.redis_host
}

output "redis_url_secret_arn" {
  description = "HEART_REDIS_URL and the edge's redis_url (Secrets Manager)."
  value       = module.platform.redis_url_secret_arn
}

output "media_bucket" {
  description = "HEART_S3_BUCKET."
  value       = module.platform.media_bucket
}

output "media_cdn_domain_name" {
  description = "Target of the media host's DNS record; https://<alias> is HEART_MEDIA_BASE_URL."
  value       = module.platform.media_cdn_domain_name
}

output "nat_public_ips" {
  description = "The cluster's outbound addresses."
  value       = module.platform.nat_public_ips
}

output "ses_dkim_records" {
  description = "Publish these CNAMEs in the mail domain's DNS (Easy DKIM)."
  value       = module.platform.ses_dkim_records
}

output "ses_smtp_host" {
  description = "HEART_SMTP_HOST of helm/heart-core values-<env>.yaml."
  value       = module.platform.ses_smtp_host
}

output "ecr_repository_arns" {
  description = "Image repositories (staging's go into production's promote_from)."
  value       = module.platform.ecr_repository_arns
}

output "ecr_kms_key_arn" {
  description = "Key of the image repositories (staging's goes into production's promote_from)."
  value       = module.platform.ecr_kms_key_arn
}

output "alertmanager_slack_secret_arn" {
  description = "Secret to put the Slack webhook URL into."
  value       = module.platform.alertmanager_slack_secret_arn
}
