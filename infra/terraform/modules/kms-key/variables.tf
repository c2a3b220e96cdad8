variable "description" {
  description = "What the key encrypts."
  type        = string
}

variable "alias" {
  description = "Alias without the alias/ prefix (null for none)."
  type        = string
  default     = null
}

variable "service_policy_json" {
  description = "Extra key policy statements (an IAM policy document) letting AWS services use the key; null for none."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags of the key."
  type        = map(string)
  default     = {}
}
