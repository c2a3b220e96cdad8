output "address" {
  description = "Host name of the primary (HEART_DATABASE_URL's host)."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "MySQL port."
  value       = aws_db_instance.this.port
}

output "database_name" {
  description = "The core's database."
  value       = aws_db_instance.this.db_name
}

output "master_user_secret_arn" {
  description = "Secrets Manager secret RDS keeps the admin credentials in."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "instance_identifier" {
  description = "The instance, for point-in-time restore."
  value       = aws_db_instance.this.identifier
}

output "security_group_id" {
  description = "The database's security group."
  value       = aws_security_group.db.id
}

output "master_user_secret_kms_key_arn" {
  description = "Key of the master user secret (External Secrets Operator decrypts with it)."
  value       = module.db_key.arn
}

output "replica_addresses" {
  description = "Host names of the read replicas (HEART_DATABASE_READ_URL's host: the first one)."
  value       = aws_db_instance.replica[*].address
}
