variable "name" {
  description = "Name prefix of every resource (e.g. heart-staging)."
  type        = string
}

variable "cidr" {
  description = "The VPC's address range."
  type        = string
}

variable "azs" {
  description = "Availability zones, at least two; one public and one private subnet each."
  type        = list(string)
  validation {
    condition     = length(var.azs) >= 2
    error_message = "At least two availability zones."
  }
}

variable "public_subnet_cidrs" {
  description = "One per AZ: the ALB and the NAT gateways."
  type        = list(string)
}

variable "private_subnet_cidrs" {
  description = "One per AZ: nodes, pods, RDS and ElastiCache."
  type        = list(string)
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all AZs (cheaper, for staging) instead of one per AZ."
  type        = bool
  default     = false
}

variable "cluster_name" {
  description = "EKS cluster whose load balancers use these subnets (subnet discovery tags)."
  type        = string
}

variable "flow_log_retention_days" {
  description = "How long VPC flow logs are kept."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}
