variable "name" {
  description = "Identifier prefix (e.g. heart-staging)."
  type        = string
}

variable "vpc_id" {
  description = "The VPC."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets in at least two AZs."
  type        = list(string)
}

variable "allowed_security_group_ids" {
  description = "Security groups whose members may connect on 3306 (the EKS cluster's)."
  type        = list(string)
}

variable "engine_version" {
  description = "MySQL version (major.minor; minor upgrades are automatic). 8.4 is the LTS; 8.0 is in paid extended support."
  type        = string
  default     = "8.4"
}

variable "instance_class" {
  description = "Instance class (Performance Insights needs db.t4g.medium or larger)."
  type        = string
}

variable "allocated_storage_gb" {
  description = "Initial storage."
  type        = number
  default     = 50
}

variable "max_allocated_storage_gb" {
  description = "Storage autoscaling ceiling."
  type        = number
  default     = 500
}

variable "multi_az" {
  description = "A synchronous standby in a second AZ with automatic failover."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Refuse deletion (turn off deliberately before destroying an environment)."
  type        = bool
  default     = true
}

variable "backup_retention_days" {
  description = "Automated backups kept for point-in-time restore (1–35 days)."
  type        = number
  default     = 14
}

variable "database_name" {
  description = "The database the core uses."
  type        = string
  default     = "heart"
}

variable "master_username" {
  description = "The administrator's name; its password is generated and kept by RDS in Secrets Manager."
  type        = string
  default     = "heart_admin"
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}

variable "read_replicas" {
  description = "Read replicas of the primary (0: none; the core then reads from the primary only)."
  type        = number
  default     = 0

  validation {
    condition     = var.read_replicas >= 0 && var.read_replicas <= 5
    error_message = "read_replicas must be between 0 and 5 (RDS MySQL allows 15; the core uses one URL)."
  }
}

variable "replica_instance_class" {
  description = "Instance class of the read replicas (null: the primary's)."
  type        = string
  default     = null
}
