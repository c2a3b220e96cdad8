variable "environment" {
  description = "staging or production."
  type        = string
}

variable "region" {
  description = "AWS region."
  type        = string
}

variable "azs" {
  description = "Availability zones."
  type        = list(string)
}

variable "vpc_cidr" {
  description = "VPC range."
  type        = string
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all AZs."
  type        = bool
}

variable "api_public_access_cidrs" {
  description = "Networks allowed to reach the Kubernetes API."
  type        = list(string)
}

variable "admin_principal_arns" {
  description = "IAM principals with cluster-admin."
  type        = list(string)
  default     = []
}

variable "node_groups" {
  description = "Managed node groups."
  type = map(object({
    instance_types = list(string)
    capacity_type  = optional(string, "ON_DEMAND")
    min_size       = number
    max_size       = number
    desired_size   = number
    disk_size_gb   = optional(number, 50)
    labels         = optional(map(string), {})
  }))
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
}

variable "db_backup_retention_days" {
  description = "RDS point-in-time restore window in days."
  type        = number
}

variable "db_read_replicas" {
  description = "RDS read replicas (0 or more); the core reads feeds, profiles and lists from the first."
  type        = number
  default     = 0
}

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
}

variable "redis_replicas" {
  description = "ElastiCache replicas."
  type        = number
}

variable "media_bucket_prefix" {
  description = "Globally unique bucket prefix."
  type        = string
}

variable "media_aliases" {
  description = "CDN host names."
  type        = list(string)
}

variable "media_certificate_arn" {
  description = "ACM certificate (us-east-1) for the CDN host names."
  type        = string
}

variable "github_repository" {
  description = "owner/name on GitHub."
  type        = string
}

variable "create_github_oidc_provider" {
  description = "Create the account's GitHub OIDC provider."
  type        = bool
  default     = true
}

variable "elasticsearch_replicas" {
  description = "Elasticsearch nodes."
  type        = number
}

variable "ecr_pull_principal_arns" {
  description = "Roles of other accounts that may pull this environment's images (staging: production's CD role, which promotes them)."
  type        = list(string)
  default     = []
}

variable "promote_from" {
  description = "Where production's CD role copies tested images from: staging's repository ARNs and their KMS key (null in staging)."
  type = object({
    repository_arns = list(string)
    kms_key_arn     = string
  })
  default = null
}

variable "mail_domain" {
  description = "Domain the core sends mail from (SES identity with DKIM)."
  type        = string
}

variable "alert_slack_channel" {
  description = "Slack channel Alertmanager posts to (the webhook URL is in Secrets Manager)."
  type        = string
}
