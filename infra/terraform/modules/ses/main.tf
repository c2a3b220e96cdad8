# Mail for the core: an SES domain identity with Easy DKIM (three CNAMEs the DNS owner publishes,
# see the dkim_records output) and a custom MAIL FROM domain, plus the IAM user whose SMTP
# credentials the core's lettre transport uses (SES SMTP accepts nothing else).

data "aws_region" "current" {}

resource "aws_sesv2_email_identity" "this" {
  email_identity = var.domain
  dkim_signing_attributes {
    next_signing_key_length = "RSA_2048_BIT"
  }
  tags = var.tags
}

resource "aws_sesv2_email_identity_mail_from_attributes" "this" {
  email_identity         = aws_sesv2_email_identity.this.email_identity
  mail_from_domain       = "mail.${var.domain}"
  behavior_on_mx_failure = "USE_DEFAULT_VALUE"
}

resource "aws_iam_user" "smtp" {
  name = "${var.name}-ses-smtp"
  tags = var.tags
  # checkov:skip=CKV_AWS_273:SES SMTP authenticates with an IAM user's derived SMTP password only; the user can do nothing but send as this identity
}

data "aws_iam_policy_document" "send" {
  statement {
    actions   = ["ses:SendRawEmail", "ses:SendEmail"]
    resources = [aws_sesv2_email_identity.this.arn]
  }
}

resource "aws_iam_user_policy" "send" {
  # checkov:skip=CKV_AWS_40:the SMTP user exists only for SES SMTP credentials; one inline policy limited to this identity
  name   = "ses-send"
  user   = aws_iam_user.smtp.name
  policy = data.aws_iam_policy_document.send.json
}

resource "aws_iam_access_key" "smtp" {
  user = aws_iam_user.smtp.name
}
