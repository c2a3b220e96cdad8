variable "name" {
  description = "The IAM role's name."
  type        = string
}

variable "oidc_provider_arn" {
  description = "The cluster's OIDC provider."
  type        = string
}

variable "oidc_issuer" {
  description = "The cluster's OIDC issuer, without https://."
  type        = string
}

variable "namespace" {
  description = "Namespace of the service account allowed to assume the role."
  type        = string
}

variable "service_account" {
  description = "The service account allowed to assume the role."
  type        = string
}

variable "policy_json" {
  description = "Inline policy of the role (null for none)."
  type        = string
  default     = null
}

variable "managed_policy_arns" {
  description = "Managed policies attached to the role."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}
