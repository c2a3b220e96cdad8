variable "name" {
  description = "Name prefix (e.g. heart-staging)."
  type        = string
}

variable "domain" {
  description = "The domain mail is sent from (From: no-reply@<domain>)."
  type        = string
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}
