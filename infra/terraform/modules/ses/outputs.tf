output "dkim_records" {
  description = "CNAME records to publish for Easy DKIM: name => value."
  value = {
    for token in aws_sesv2_email_identity.this.dkim_signing_attributes[0].tokens :
    "${token}._domainkey.${var.domain}" => "${token}.dkim.amazonses.com"
  }
}

output "smtp_host" {
  description = "HEART_SMTP_HOST."
  value       = "email-smtp.${data.aws_region.current.name}.amazonaws.com"
}

output "smtp_username" {
  description = "HEART_SMTP_USERNAME (the access key id)."
  value       = aws_iam_access_key.smtp.id
}

output "smtp_password" {
  description = "HEART_SMTP_PASSWORD (SES SMTP password derived from the secret key for this region)."
  value       = aws_iam_access_key.smtp.ses_smtp_password_v4
  sensitive   = true
}
