variable "repositories" {
  description = "Repository names: the core image and the edge's OCI Spin app."
  type        = list(string)
  default     = ["heart-core", "heart-edge"]
}

variable "keep_images" {
  description = "Images kept per repository (older ones expire); rollbacks can go this far back."
  type        = number
  default     = 200
}

variable "github_repository" {
  description = "owner/name of the GitHub repository whose CD workflow may push (via OIDC, no keys)."
  type        = string
}

variable "github_environments" {
  description = "GitHub environments whose jobs may assume the push role (their protection rules pick the branches)."
  type        = list(string)
}

variable "pull_principal_arns" {
  description = "Roles of other accounts allowed to pull these images (production's CD role, on staging)."
  type        = list(string)
  default     = []
}

variable "promote_from" {
  description = "Repositories and KMS key this environment's CD role may pull from to promote (null: none)."
  type = object({
    repository_arns = list(string)
    kms_key_arn     = string
  })
  default = null
}

variable "create_github_oidc_provider" {
  description = "Create the account's GitHub OIDC provider (false when the account already has one)."
  type        = bool
  default     = true
}

variable "name" {
  description = "Name prefix of the CD role (e.g. heart-staging)."
  type        = string
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}
