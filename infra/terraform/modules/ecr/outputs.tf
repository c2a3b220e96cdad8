output "repository_urls" {
  description = "Repository URLs by name (image.repository in the Helm values files)."
  value       = { for name, r in aws_ecr_repository.this : name => r.repository_url }
}

output "cd_role_arn" {
  description = "Role for the CD workflow (GitHub secret AWS_CD_ROLE_ARN of the environment)."
  value       = aws_iam_role.cd.arn
}
