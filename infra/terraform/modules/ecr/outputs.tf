output "repository_urls" {
  description = "Repository URLs by name (image.repository in the Helm values files)."
  value       = { for name, r in aws_ecr_repository.this : name => r.repository_url }
}

output "cd_role_arn" {
  description = "Role for the CD workflow (GitHub secret AWS_CD_ROLE_ARN of the environment)."
  value       = aws_iam_role.cd.arn
}

output "repository_arns" {
  description = "Repository ARNs (production's promote_from.repository_arns, when this is staging)."
  value       = [for r in aws_ecr_repository.this : r.arn]
}

output "kms_key_arn" {
  description = "The repositories' key (production's promote_from.kms_key_arn, when this is staging)."
  value       = module.ecr_key.arn
}
