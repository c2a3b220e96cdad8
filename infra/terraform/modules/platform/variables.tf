variable "environment" {
  description = "staging or production."
  type        = string
  validation {
    condition     = contains(["staging", "production"], var.environment)
    error_message = "environment is staging or production."
  }
}

variable "region" {
  description = "AWS region."
  type        = string
}

variable "azs" {
  description = "Availability zones (two or more)."
  type        = list(string)
}

variable "vpc_cidr" {
  description = "The VPC's range; the subnets are carved out of it (/20 each)."
  type        = string
}

variable "single_nat_gateway" {
  description = "One NAT gateway instead of one per AZ."
  type        = bool
  default     = false
}

variable "versions" {
  description = "infra/versions/versions.yaml, decoded: the Kubernetes version and every add-on version (no defaults here: one place)."
  type        = any
}

variable "api_public_access_cidrs" {
  description = "Networks allowed to reach the Kubernetes API server (operators, CI)."
  type        = list(string)
}

variable "admin_principal_arns" {
  description = "IAM principals with cluster-admin (EKS access entries)."
  type        = list(string)
  default     = []
}

variable "node_groups" {
  description = "Managed node groups (see module eks)."
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
  description = "RDS point-in-time restore window."
  type        = number
  default     = 14
}

variable "db_read_replicas" {
  description = "RDS read replicas; the core reads from the first (HEART_DATABASE_READ_URL)."
  type        = number
  default     = 0
}

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
}

variable "redis_replicas" {
  description = "ElastiCache replicas besides the primary."
  type        = number
  default     = 1
}

variable "media_bucket_prefix" {
  description = "Globally unique prefix of the media and log buckets."
  type        = string
}

variable "media_aliases" {
  description = "CDN host names (e.g. media.example.com)."
  type        = list(string)
}

variable "media_certificate_arn" {
  description = "ACM certificate of the CDN host names, in us-east-1."
  type        = string
}

variable "github_repository" {
  description = "owner/name of the GitHub repository allowed to push images."
  type        = string
}

variable "create_github_oidc_provider" {
  description = "Create the account's GitHub OIDC provider (false if it exists already)."
  type        = bool
  default     = true
}

variable "argocd_root_application" {
  description = "The root Argo CD Application (app of apps) of this environment, decoded from deploy/argocd/root/<environment>.yaml."
  type        = any
}

variable "fluent_bit_values" {
  description = "Values of the fluent-bit chart."
  type        = string
}

variable "elasticsearch_replicas" {
  description = "Elasticsearch nodes."
  type        = number
  default     = 3
}

variable "app_namespace" {
  description = "Namespace of heart-core and heart-edge."
  type        = string
  default     = "heart"
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}

variable "ecr_pull_principal_arns" {
  description = "Roles of other accounts that may pull this environment's images (staging: production's CD role)."
  type        = list(string)
  default     = []
}

variable "promote_from" {
  description = "Repositories and KMS key production's CD role copies tested images from (null: none)."
  type = object({
    repository_arns = list(string)
    kms_key_arn     = string
  })
  default = null
}

variable "mail_domain" {
  description = "Domain of the SES identity the core sends from."
  type        = string
}

variable "alert_slack_channel" {
  description = "Slack channel of Alertmanager's receiver."
  type        = string
}
