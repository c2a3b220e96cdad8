variable "name" {
  description = "The cluster's name (e.g. heart-staging)."
  type        = string
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version (infra/versions/versions.yaml); infra/check.sh validates the charts against the same one."
  type        = string
}

variable "vpc_id" {
  description = "The VPC of the cluster."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the control plane's network interfaces and the nodes."
  type        = list(string)
}

variable "endpoint_public_access" {
  description = "Whether the API server is reachable from public_access_cidrs (operators, CI) as well as from the VPC."
  type        = bool
  default     = true
}

variable "public_access_cidrs" {
  description = "Networks allowed to reach the public API endpoint (office, VPN, CI egress). Never 0.0.0.0/0."
  type        = list(string)
  validation {
    condition     = !contains(var.public_access_cidrs, "0.0.0.0/0")
    error_message = "The API server must not be open to the whole internet."
  }
}

variable "admin_principal_arns" {
  description = "IAM roles or users given cluster-admin through EKS access entries (operators, the CD role does not need it)."
  type        = list(string)
  default     = []
}

variable "node_groups" {
  description = "Managed node groups. The cluster autoscaler moves each between min_size and max_size."
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

variable "log_retention_days" {
  description = "How long control-plane logs are kept."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}
