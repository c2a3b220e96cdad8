output "primary_endpoint" {
  description = "Host name of the primary."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "port" {
  description = "Redis port (TLS)."
  value       = aws_elasticache_replication_group.this.port
}

output "redis_url_secret_arn" {
  description = "Secrets Manager secret holding the rediss:// URL with the AUTH token."
  value       = aws_secretsmanager_secret.redis_url.arn
}

output "security_group_id" {
  description = "The cache's security group."
  value       = aws_security_group.cache.id
}

output "kms_key_arn" {
  description = "Key of the cache and of its URL secret (External Secrets Operator decrypts with it)."
  value       = module.cache_key.arn
}
