output "cluster_name" {
  description = "The cluster's name."
  value       = aws_eks_cluster.this.name
}

output "cluster_endpoint" {
  description = "The API server's URL."
  value       = aws_eks_cluster.this.endpoint
}

output "cluster_certificate_authority" {
  description = "Base64 CA certificate of the API server."
  value       = aws_eks_cluster.this.certificate_authority[0].data
}

output "cluster_security_group_id" {
  description = "The security group EKS puts on the control plane and the managed nodes (and so the pods)."
  value       = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
}

output "oidc_provider_arn" {
  description = "IRSA: the OIDC provider's ARN."
  value       = aws_iam_openid_connect_provider.this.arn
}

output "oidc_issuer" {
  description = "IRSA: the issuer without https:// (the prefix of the token's sub and aud claims)."
  value       = aws_iam_openid_connect_provider.this.url
}

output "node_role_arn" {
  description = "The nodes' IAM role."
  value       = aws_iam_role.node.arn
}
