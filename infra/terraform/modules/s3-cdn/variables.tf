variable "name" {
  description = "Name prefix; the buckets are <name>-media and <name>-logs (globally unique: include the account or a suffix)."
  type        = string
}

variable "aliases" {
  description = "Host names of the CDN (e.g. media.example.com)."
  type        = list(string)
}

variable "certificate_arn" {
  description = "ACM certificate for the aliases, in us-east-1 (CloudFront's requirement)."
  type        = string
}

variable "price_class" {
  description = "CloudFront price class."
  type        = string
  default     = "PriceClass_100"
}

variable "noncurrent_version_days" {
  description = "Days an overwritten or deleted media object is kept before it is gone."
  type        = number
  default     = 30
}

variable "log_retention_days" {
  description = "Days the access logs are kept."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}
