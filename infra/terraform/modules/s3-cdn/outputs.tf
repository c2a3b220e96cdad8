output "bucket_name" {
  description = "The media bucket."
  value       = aws_s3_bucket.media.bucket
}

output "bucket_arn" {
  description = "The media bucket's ARN (for the core's IRSA policy)."
  value       = aws_s3_bucket.media.arn
}

output "kms_key_arn" {
  description = "The media bucket's key (the core needs to use it to write)."
  value       = module.media_key.arn
}

output "cdn_domain_name" {
  description = "CloudFront's host name: point the aliases' DNS (CNAME or alias record) here."
  value       = aws_cloudfront_distribution.media.domain_name
}

output "cdn_distribution_id" {
  description = "The distribution, for invalidations."
  value       = aws_cloudfront_distribution.media.id
}
